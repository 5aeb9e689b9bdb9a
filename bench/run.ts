/**
 * `npm run bench`: throughput of the engine on this machine, printed as figures and ratios.
 * Results go into docs/benchmarks.md by hand, with the date and machine.
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { openModel, type ModelHandle } from '../main/model/model.ts';
import { modelInfo } from '../main/model/info.ts';
import { loadTokenizer } from '../main/model/tokenizer.ts';
import { loadWindows } from '../main/data/windows.ts';
import { Engine, f32 } from '../main/runtime/engine.ts';
import { ModelRunner, layerWeightFeeds } from '../main/runtime/runner.ts';
import { perplexity } from '../main/runtime/perplexity.ts';
import { attr, GraphBuilder } from '../main/runtime/onnx/builder.ts';
import { benchNative } from './native.ts';
import { benchCompress } from './compress.ts';
import { benchExport } from './export.ts';
import { benchDecode } from './decode.ts';
import type { ModelSpec } from '../main/model/types.ts';

const here = path.dirname(new URL(import.meta.url).pathname);
const SHARED = path.resolve(here, '..', '..', 'shared', 'testdata');
const STORIES = path.join(SHARED, 'stories260K-llama');
const TEXT = path.join(SHARED, 'text', 'tinystories_valid_excerpt.txt');

function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

async function timeIt(reps: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const start = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return (performance.now() - start) / 1000 / reps;
}

/**
 * onnxruntime's own sgemm on a layer-sized product [M, K]·[K, N], as MatMul and as Gemm with a transposed
 * [N, K] weight (the form the layer graphs use); the faster of the two is the reference.
 */
async function sgemmGflops(M: number, K: number, N: number): Promise<{ matmul: number; gemm: number }> {
  const a = f32(
    Float32Array.from({ length: M * K }, () => Math.random() - 0.5),
    [M, K],
  );
  const b = f32(
    Float32Array.from({ length: K * N }, () => Math.random() - 0.5),
    [K, N],
  );
  const bt = f32(
    Float32Array.from({ length: K * N }, () => Math.random() - 0.5),
    [N, K],
  );
  const measure = async (op: 'MatMul' | 'Gemm') => {
    const g = new GraphBuilder('sgemm');
    const w = g.input('b', op === 'MatMul' ? [K, N] : [N, K]);
    const c = g.op(op, [g.input('a', [M, K]), w], op === 'Gemm' ? { transB: attr.i(1) } : {});
    g.output('c', c, [M, N]);
    const session = await ort.InferenceSession.create(g.build(), { graphOptimizationLevel: 'all' });
    const s = await timeIt(20, () => session.run({ a, b: op === 'MatMul' ? b : bt }));
    await session.release();
    return (2 * M * K * N) / s / 1e9;
  };
  return { matmul: await measure('MatMul'), gemm: await measure('Gemm') };
}

/** FLOPs of one decoder layer on B·T tokens, counting the full T×T attention products the graph computes. */
function layerFlops(spec: ModelSpec, B: number, T: number): number {
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: F } = spec;
  const proj = 2 * D * (H * d + 2 * Hkv * d) + 2 * H * d * D;
  const mlp = 2 * D * F * (spec.block.mlp.gated ? 3 : 2);
  const attn = 2 * 2 * H * T * d;
  return B * T * (proj + mlp + attn);
}

async function layerGflops(model: ModelHandle, engine: Engine, B: number, T: number): Promise<number> {
  const runner = new ModelRunner(engine, model);
  const feeds = layerWeightFeeds(model.spec, await model.loadLayer(0));
  const x = Float32Array.from({ length: B * T * model.spec.hiddenSize }, () => Math.random() - 0.5);
  const s = await timeIt(8, () => runner.layer(feeds, x, B, T));
  return layerFlops(model.spec, B, T) / s / 1e9;
}

async function evalThroughput(modelDir: string, engine: Engine, window: number, count: number) {
  const model = await openModel(modelDir);
  const tokenizer = await loadTokenizer(modelDir);
  const { windows } = await loadWindows(TEXT, tokenizer, { window, count });
  const r = await perplexity(new ModelRunner(engine, model), windows);
  await model.close();
  return { ...r, tokensPerSecond: (count * window) / r.seconds };
}

/** Sections to run: BENCH=eval,native,compress,export (default all four); `decode` (bench/decode.ts) on request. */
const SECTIONS = new Set((process.env.BENCH ?? 'eval,native,compress,export').split(','));

async function main(): Promise<void> {
  const engine = await Engine.create({ device: 'cpu' });
  const say = (k: string, v: string) => console.log(`${k.padEnd(52)} ${v}`);
  console.log(
    `Rankwise bench — ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, node ${process.version}, onnxruntime ${ort.env.versions.node}, provider ${engine.provider}\n`,
  );

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rankwise-bench-'));
  try {
    if (SECTIONS.has('native')) {
      for (const [k, v] of await benchNative()) say(k, v);
    }
    if (SECTIONS.has('eval') || SECTIONS.has('compress') || SECTIONS.has('export')) {
      const t0 = performance.now();
      execFileSync(process.execPath, ['--import', 'tsx', path.join(here, 'make-synthetic.ts'), tmp], {
        stdio: 'inherit',
      });
      const model = await openModel(tmp);
      say(
        'synthetic 125M: parameters',
        `${modelInfo(model).parameters.toLocaleString('en-US')} (generated in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
      await model.close();
    }
    if (SECTIONS.has('eval')) {
      const small = await evalThroughput(STORIES, engine, 512, 32);
      say('peak RSS after stories260K', `${peakRssMiB().toFixed(0)} MiB`);
      say(
        'stories260K eval, 32 × 512 tokens',
        `${Math.round(small.tokensPerSecond).toLocaleString('en-US')} tokens/s (ppl ${small.perplexity.toFixed(3)})`,
      );
      const model = await openModel(tmp);
      const B = 4;
      const T = 512;
      const layer = await layerGflops(model, engine, B, T);
      const spec = model.spec;
      const sgemm = await sgemmGflops(B * T, spec.hiddenSize, spec.intermediateSize);
      say(`synthetic 125M: layer forward, ${B} × ${T} tokens`, `${layer.toFixed(1)} GFLOP/s`);
      const shape = `[${B * T}×${spec.hiddenSize}]·[${spec.hiddenSize}×${spec.intermediateSize}]`;
      say(`onnxruntime sgemm ${shape}, MatMul`, `${sgemm.matmul.toFixed(1)} GFLOP/s`);
      say(`onnxruntime sgemm ${shape}, Gemm transB`, `${sgemm.gemm.toFixed(1)} GFLOP/s`);
      const best = Math.max(sgemm.matmul, sgemm.gemm);
      say('layer forward / best sgemm', `${((100 * layer) / best).toFixed(0)} %`);
      await model.close();
      const big = await evalThroughput(tmp, engine, 512, 8);
      say(
        'synthetic 125M eval, 8 × 512 tokens',
        `${Math.round(big.tokensPerSecond).toLocaleString('en-US')} tokens/s (${big.seconds.toFixed(1)} s)`,
      );
      say('peak RSS after the eval section', `${peakRssMiB().toFixed(0)} MiB`);
    }
    if (SECTIONS.has('compress')) {
      await benchCompress(STORIES, tmp, TEXT);
    }
    if (SECTIONS.has('export')) {
      await benchExport(STORIES, tmp, TEXT, say);
      say('peak RSS after the export section', `${peakRssMiB().toFixed(0)} MiB`);
    }
    if (SECTIONS.has('decode')) {
      await benchDecode(say);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  say('peak RSS of the bench process (engine only)', `${peakRssMiB().toFixed(0)} MiB`);
  await engine.release();
}

await main();
