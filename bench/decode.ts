/**
 * Decode speed: `generate` tokens/s (single-token steps after the prefill) of the original model's
 * KV-cache decoder (full cache) against the decoders of its compressions (`compressions` below: KQ-SVD at
 * half the KV cache in each RoPE key space, thin keys at a quarter of the key cache before RoPE and in the
 * thin space), each step's time set against the
 * memory-bandwidth floor: the bytes a decode step must at least read (the decoder's float32 weights and
 * the cache it holds) over the machine's measured memcpy bandwidth.
 *
 * Models: stories260K at contexts 128 and 500 (its limit is 512), and the bench's synthetic ~125M
 * Llama-shaped model (bench/recipes.ts, with max_position_embeddings raised to 8192) at 512 and 4096;
 * 32 steps each.
 * "Context N": the prompt is the first N − steps tokens of the TinyStories excerpt, then `steps` tokens
 * are generated greedily, so the cache holds N tokens at the end. The decoders take turns step by step
 * (Generator), so the machine's noise falls on all of them alike.
 *
 * Run: `npm run bench:decode` or `BENCH=decode npm run bench`. Results go into docs/benchmarks.md by hand.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { compressedModel } from '../main/export/compressed-model.ts';
import { openTryDecoder, type TryDecoder, type TrySource } from '../main/generate/decoder.ts';
import { Generator } from '../main/generate/generate.ts';
import type { Generation } from '../main/contract/try.ts';
import { compressToPlan, type CompressionPlan } from '../main/jobs/compress.ts';
import { loadWindows } from '../main/data/windows.ts';
import { openModel } from '../main/model/model.ts';
import { loadTokenizer } from '../main/model/tokenizer.ts';
import { writeSyntheticModel } from '../main/model/synthetic.ts';
import type { KeySpace, MethodId } from '../main/core/kv.ts';
import { SYNTH_125M } from './recipes.ts';

type Say = (k: string, v: string) => void;

const here = path.dirname(fileURLToPath(import.meta.url));
const SHARED = path.resolve(here, '..', '..', 'shared', 'testdata');
const STORIES = path.join(SHARED, 'stories260K-llama');
const TEXT = path.join(SHARED, 'text', 'tinystories_valid_excerpt.txt');

/**
 * The compressions decoded beside the original: KQ-SVD at half the cache in both RoPE key spaces, and thin
 * keys at a quarter of the key cache (values full) rebuilt before RoPE (R1) and attending in the thin space
 * (R3). A decode step's cost depends on the shapes alone, so R3 runs its fit unfine-tuned here.
 */
function compressions(d: number): { method: MethodId; keySpace: KeySpace; k: number; v: number }[] {
  return [
    { method: 'kqsvd', keySpace: 'pre-rope', k: d / 2, v: d / 2 },
    { method: 'kqsvd', keySpace: 'post-rope', k: d / 2, v: d / 2 },
    { method: 'thinkeys', keySpace: 'pre-rope', k: d / 4, v: d },
    { method: 'thinkeys', keySpace: 'thin-rope', k: d / 4, v: d },
  ];
}
const MiB = 2 ** 20;

/**
 * The best copy rate of a 256 MiB float32 array (bytes copied per second), by one thread
 * (TypedArray.set) and by two worker threads copying a half each at the same time. A copy reads and
 * writes every byte, so the read bandwidth a decode step could reach is somewhat higher than this.
 */
export async function memcpyBandwidth(reps = 5): Promise<{ one: number; two: number }> {
  const bytes = 256 * MiB;
  let src = new Float32Array(bytes / 4).fill(1);
  let dst = new Float32Array(bytes / 4);
  let best = Infinity;
  for (let i = 0; i <= reps; i++) {
    const t0 = performance.now();
    dst.set(src);
    const s = (performance.now() - t0) / 1000;
    if (i > 0) best = Math.min(best, s);
  }
  const one = bytes / best;
  src = dst = new Float32Array(0);

  const shared = { src: new SharedArrayBuffer(bytes), dst: new SharedArrayBuffer(bytes) };
  new Float32Array(shared.src).fill(1);
  new Float32Array(shared.dst).fill(0);
  const code = `
    const { parentPort, workerData: w } = require('node:worker_threads');
    const s = new Float32Array(w.src, w.from, w.n), d = new Float32Array(w.dst, w.from, w.n);
    parentPort.on('message', () => { d.set(s); parentPort.postMessage(0); });`;
  const half = bytes / 2;
  const workers = [0, 1].map(
    (k) =>
      new Worker(code, {
        eval: true,
        workerData: { ...shared, from: k * half, n: half / 4 },
        execArgv: [],
      }),
  );
  const round = () =>
    Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('message', () => resolve());
            w.postMessage(0);
          }),
      ),
    );
  best = Infinity;
  try {
    for (let i = 0; i <= reps; i++) {
      const t0 = performance.now();
      await round();
      const s = (performance.now() - t0) / 1000;
      if (i > 0) best = Math.min(best, s);
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return { one, two: bytes / best };
}

/** Float32 values the decoder's initializers hold: every distinct array of the narrowed model. */
async function decoderParameters(modelDir: string, layers: CompressionPlan['layers']): Promise<number> {
  const model = await openModel(modelDir);
  try {
    const cm = compressedModel(model, layers);
    const seen = new Set<Float32Array>();
    let count = 0;
    const walk = (x: unknown): void => {
      if (x instanceof Float32Array) {
        if (!seen.has(x)) count += x.length;
        seen.add(x);
      } else if (x && typeof x === 'object' && !ArrayBuffer.isView(x)) {
        for (const v of Object.values(x)) walk(v);
      }
    };
    walk(await cm.loadEmbeddings());
    for (let i = 0; i < cm.spec.numLayers; i++) walk(await cm.loadNarrowLayer(i));
    return count;
  } finally {
    await model.close();
  }
}

interface Variant {
  name: string;
  source: TrySource;
  /** Float32 parameters of its ONNX decoder. */
  parameters: number;
}

interface Row {
  model: string;
  variant: string;
  context: number;
  steps: number;
  generation: Generation;
  weightBytes: number;
}

/** Opens every variant, then per context prefills each and decodes `steps` tokens, the variants taking turns. */
async function decodeVariants(
  model: string,
  variants: Variant[],
  ids: Int32Array,
  contexts: number[],
  steps: number,
  say: Say,
): Promise<Row[]> {
  const decoders: TryDecoder[] = [];
  const rows: Row[] = [];
  try {
    for (const v of variants) {
      // no stop tokens: every run decodes exactly `steps` tokens
      decoders.push({ ...(await openTryDecoder(v.source)), stopIds: [] });
    }
    for (const context of contexts) {
      const prompt = ids.subarray(0, context - steps);
      const gens = decoders.map((d) => new Generator(d, prompt, { maxNewTokens: steps + 1 }));
      for (const g of gens) await g.advance(); // the prefill and the first token
      for (let s = 0; s < steps; s++) for (const g of gens) await g.advance();
      gens.forEach((g, i) => {
        const r = g.result();
        rows.push({
          model,
          variant: variants[i].name,
          context,
          steps,
          generation: r,
          weightBytes: 4 * variants[i].parameters,
        });
        say(
          `${model} ${variants[i].name}, context ${context}`,
          `${r.decodeTokensPerSecond?.toFixed(2)} tokens/s decode, prefill ${r.promptTokens} tokens ` +
            `${r.prefillSeconds.toFixed(1)} s, cache ${(r.kvCacheBytes / MiB).toFixed(2)} MiB`,
        );
      });
    }
  } finally {
    for (const d of decoders) await d.close();
  }
  return rows;
}

async function benchModel(
  label: string,
  modelDir: string,
  text: string,
  contexts: number[],
  steps: number,
  say: Say,
): Promise<Row[]> {
  const model = await openModel(modelDir);
  const spec = model.spec;
  const tokenizer = await loadTokenizer(model.dir);
  await model.close();
  const d = spec.headDim;
  const ids = (await loadWindows(text, tokenizer, { window: Math.max(...contexts), count: 1 })).windows[0];

  const variants: Variant[] = [
    { name: 'original', source: { dir: modelDir }, parameters: await decoderParameters(modelDir, []) },
  ];
  for (const { method, keySpace, k, v } of compressions(d)) {
    const t0 = performance.now();
    const { plan } = await compressToPlan({
      modelDir,
      calib: text,
      eval: text,
      method,
      ranks: { k, v },
      keySpace,
      window: Math.min(512, spec.maxPositions),
      calibWindows: 4,
      heldoutWindows: 1,
      evalWindows: 1,
    });
    const name = `${method} ${keySpace} ${k}/${v}`;
    say(`${label} ${name}: compressed`, `${((performance.now() - t0) / 1000).toFixed(1)} s`);
    variants.push({
      name,
      source: { plan, label: `${label} ${name}` },
      parameters: await decoderParameters(modelDir, plan.layers),
    });
  }
  return decodeVariants(label, variants, ids, contexts, steps, say);
}

/** The markdown table of the rows, bandwidth in bytes/s. */
function table(rows: Row[], bandwidth: number): string {
  const lines = [
    '| model, context | decoder | generate tokens/s | thin ÷ original | step ms | cache MiB | weights MiB | floor ms | step ÷ floor |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const g = r.generation;
    const tps = g.decodeTokensPerSecond ?? 0;
    const original = rows.find(
      (o) => o.model === r.model && o.context === r.context && o.variant === 'original',
    );
    const ratio =
      r.variant === 'original' || !original
        ? ''
        : (tps / (original.generation.decodeTokensPerSecond ?? 0)).toFixed(2);
    const stepMs = 1000 / tps;
    const floorMs = ((r.weightBytes + g.kvCacheBytes) / bandwidth) * 1000;
    lines.push(
      `| ${r.model}, ${r.context} | ${r.variant} | ${tps.toFixed(2)} | ${ratio} | ${stepMs.toFixed(1)} | ` +
        `${(g.kvCacheBytes / MiB).toFixed(2)} | ${(r.weightBytes / MiB).toFixed(1)} | ${floorMs.toFixed(2)} | ` +
        `${(stepMs / floorMs).toFixed(1)} |`,
    );
  }
  return lines.join('\n');
}

export async function benchDecode(say: Say): Promise<void> {
  const start = performance.now();
  const bw = await memcpyBandwidth();
  const bandwidth = Math.max(bw.one, bw.two);
  say(
    'memcpy bandwidth, 256 MiB, best of 5 (1 thread / 2 threads)',
    `${(bw.one / 1e9).toFixed(2)} / ${(bw.two / 1e9).toFixed(2)} GB/s; floor uses ${(bandwidth / 1e9).toFixed(2)}`,
  );

  const rows = await benchModel('stories260K', STORIES, TEXT, [128, 500], 32, say);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rankwise-bench-decode-'));
  try {
    const t0 = performance.now();
    await writeSyntheticModel(tmp, { ...SYNTH_125M, maxPositions: 8192 });
    say(
      'synthetic 125M (max_position_embeddings 8192)',
      `generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    rows.push(...(await benchModel('125M', tmp, TEXT, [512, 4096], 32, say)));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  console.log(`\n${table(rows, bandwidth)}\n`);
  say('peak RSS of the decode bench', `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  say('decode bench total', `${((performance.now() - start) / 1000).toFixed(0)} s`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const say: Say = (k, v) => console.log(`${k.padEnd(60)} ${v}`);
  console.log(
    `Rankwise decode bench — ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, node ${process.version}, ` +
      `onnxruntime ${ort.env.versions.node}\n`,
  );
  await benchDecode(say);
}
