/**
 * transformers.js as a real outside client: an export folder, unchanged, loads in transformers.js 4 and 3
 * (AutoTokenizer + AutoModelForCausalLM, local files only, no network) and its greedy generation equals
 * Rankwise's own greedy tokens from the same onnx/model.onnx, and for an uncompressed export the original
 * model's; and so does a 16-bit export (stories260K stored in BF16, exported with its float16 cache and
 * bfloat16 weights), which transformers.js 4 sizes from the model's float16 inputs and transformers.js 3
 * from config.json's `kv_cache_dtype`. Each client runs in its own Node process: transformers.js 3 bundles onnxruntime-node 1.21,
 * whose native library cannot share a process with the 1.30 that Rankwise (and transformers.js 4) load.
 * That 1.21 is the oldest onnxruntime the README promises, and this test is the proof.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exportPlan } from '../../main/export/export.ts';
import { ONNX_FILE } from '../../main/export/onnx-files.ts';
import { compressToPlan, type CompressionPlan, type CompressSettings } from '../../main/jobs/compress.ts';
import { openModel } from '../../main/model/model.ts';
import { loadTokenizer } from '../../main/model/tokenizer.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { greedyDecode } from '../../main/runtime/generate.ts';
import { KvDecoderSession } from '../../main/runtime/kv-session.ts';
import { ModelRunner } from '../../main/runtime/runner.ts';
import { copyInDtype } from '../helpers/half-checkpoint.ts';
import { REPO_ROOT, STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const PROMPT = 'Once upon a time';
const STEPS = 32;

/** The two clients: package (as installed), major version, and the onnxruntime-node it bundles. */
const CLIENTS = [
  { label: 'transformers.js 4', pkg: '@huggingface/transformers', major: '4', onnxruntime: '1.30.0' },
  { label: 'transformers.js 3', pkg: 'transformers-v3', major: '3', onnxruntime: '1.21.0' },
] as const;

/**
 * Run in a fresh Node process: loads the folder `root/name` with the client's Auto classes from local
 * files only and prints one JSON line with the prompt's ids and the greedy sequence.
 */
const CLIENT_SCRIPT = `
const { pkg, root, name, prompt, steps } = JSON.parse(process.env.RANKWISE_TJS);
const t = await import(pkg);
t.env.allowRemoteModels = false;
t.env.allowLocalModels = true;
t.env.localModelPath = root;
const tokenizer = await t.AutoTokenizer.from_pretrained(name);
const model = await t.AutoModelForCausalLM.from_pretrained(name, { dtype: 'fp32', device: 'cpu' });
const inputs = tokenizer(prompt);
const out = await model.generate({ ...inputs, max_new_tokens: steps, do_sample: false });
await model.dispose();
console.log('RESULT ' + JSON.stringify({
  version: t.env.version,
  onnxruntime: t.env.backends.onnx.versions?.node ?? null,
  prompt: Array.from(inputs.input_ids.data, Number),
  ids: Array.from(out.data, Number),
}));
`;

interface ClientResult {
  version: string;
  onnxruntime: string | null;
  prompt: number[];
  ids: number[];
}

async function generateWith(pkg: string, folder: string): Promise<ClientResult> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--input-type=module', '-e', CLIENT_SCRIPT],
    {
      // bare imports resolve from the repository's node_modules
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        RANKWISE_TJS: JSON.stringify({
          pkg,
          root: path.dirname(folder),
          name: path.basename(folder),
          prompt: PROMPT,
          steps: STEPS,
        }),
      },
      timeout: 100_000,
      maxBuffer: 16 * 2 ** 20,
    },
  );
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no result from ${pkg}:\n${stdout}`);
  return JSON.parse(line.slice('RESULT '.length)) as ClientResult;
}

interface Export {
  dir: string;
  /** Rankwise's greedy sequence (prompt included) from the export's own ONNX decoder. */
  rankwise: number[];
  ranks: [number, number][];
  /** The element type of the decoder's cache, as its inputs declare it. */
  cacheType: string;
  /** Cache bytes per token measured by the export's verification, and the original model's. */
  cacheBytesPerToken: { measured: number; original: number } | undefined;
}

const tmp = tempDir('rankwise-transformers-js-');
const exported = new Map<string, Export>();
let promptIds: number[] = [];
let originalGreedy: number[] = [];
let eosId: number | null = null;

const base: CompressSettings = {
  modelDir: STORIES_DIR,
  calib: TINYSTORIES_TEXT,
  eval: TINYSTORIES_TEXT,
  method: 'kqsvd',
  window: 128,
  calibWindows: 4,
  evalWindows: 2,
};

async function exportKind(name: string, plan: CompressionPlan): Promise<void> {
  const dir = path.join(tmp.dir, name);
  const report = await exportPlan(plan, { out: dir });
  expect(report.export.verification.passed).toBe(true);
  const cacheBytesPerToken = report.export.verification.onnx?.cacheBytesPerToken;
  const model = await openModel(dir);
  const spec = model.spec;
  await model.close();
  const layers = spec.kvCompression!;
  const session = await KvDecoderSession.create(path.join(dir, ONNX_FILE), {
    numKvHeads: spec.numKvHeads,
    vocabSize: spec.vocabSize,
    layers,
  });
  try {
    const rankwise = Array.from(await session.greedy(Int32Array.from(promptIds), STEPS));
    exported.set(name, {
      dir,
      rankwise,
      ranks: layers.map((l) => [l.kRank, l.vRank]),
      cacheType: session.cacheType,
      cacheBytesPerToken,
    });
  } finally {
    await session.release();
  }
}

beforeAll(async () => {
  const tokenizer = await loadTokenizer(STORIES_DIR);
  promptIds = Array.from(tokenizer.encode(PROMPT));
  eosId = tokenizer.eosId;

  const half = await compressToPlan({ ...base, ranks: { k: 4, v: 4 }, keySpace: 'post-rope' });
  await exportKind('half', half.plan);
  const allocated = await compressToPlan({ ...base, kvFraction: 0.5, keySpace: 'auto' });
  await exportKind('allocated', allocated.plan);
  // every layer left whole: the export's decoder is the original model with a full cache
  await exportKind('uncompressed', { ...half.plan, layers: half.plan.layers.map(() => null) });
  // the same model as a BF16 release: its export keeps a float16 cache and bfloat16 weights
  const bf16 = path.join(tmp.dir, 'stories-bf16');
  await copyInDtype(STORIES_DIR, bf16, 'BF16');
  const halfBf16 = await compressToPlan({
    ...base,
    modelDir: bf16,
    ranks: { k: 4, v: 4 },
    keySpace: 'pre-rope',
  });
  await exportKind('half-bf16', halfBf16.plan);

  const engine = await Engine.create();
  const original = await openModel(STORIES_DIR);
  try {
    const runner = new ModelRunner(engine, original);
    originalGreedy = Array.from(await greedyDecode(runner, Int32Array.from(promptIds), { steps: STEPS }));
  } finally {
    await original.close();
    await engine.release();
  }
}, 300_000);
afterAll(() => tmp.cleanup());

/**
 * half: ranks 4 of 8 in every layer (post-RoPE keys); allocated: a half cache whose ranks differ from layer
 * to layer; uncompressed: every rank full; half-bf16: ranks 4 of 8 of the BF16 copy, a 16-bit export.
 */
const KINDS = ['half', 'allocated', 'uncompressed', 'half-bf16'] as const;

describe('exports load in transformers.js and generate what Rankwise generates', () => {
  it('the exports are what their names say; Rankwise decodes the uncompressed one as the original', () => {
    const d = 8;
    expect(exported.get('half')!.ranks.every(([k, v]) => k === 4 && v === 4)).toBe(true);
    const allocated = exported.get('allocated')!.ranks;
    expect(new Set(allocated.map(([k, v]) => `${k}/${v}`)).size).toBeGreaterThan(1);
    expect(allocated.some(([k, v]) => k < d || v < d)).toBe(true);
    expect(exported.get('uncompressed')!.ranks.every(([k, v]) => k === d && v === d)).toBe(true);
    expect(originalGreedy).toHaveLength(promptIds.length + STEPS);
    expect(exported.get('uncompressed')!.rankwise).toEqual(originalGreedy);
    // float32 stays float32; the BF16 model's cache is float16, half of its original 2-byte cache per token
    for (const kind of ['half', 'allocated', 'uncompressed'] as const) {
      expect(exported.get(kind)!.cacheType).toBe('float32');
    }
    const bf16 = exported.get('half-bf16')!;
    expect(bf16.ranks.every(([k, v]) => k === 4 && v === 4)).toBe(true);
    expect(bf16.cacheType).toBe('float16');
    expect(bf16.cacheBytesPerToken!.original).toBe(2 * 2 * 5 * 4 * 8);
    expect(bf16.cacheBytesPerToken!.measured * 2).toBe(bf16.cacheBytesPerToken!.original);
  });

  for (const client of CLIENTS) {
    it.each(KINDS)(`${client.label} loads the %s export; its greedy tokens are Rankwise's`, async (kind) => {
      const e = exported.get(kind)!;
      const got = await generateWith(client.pkg, e.dir);
      expect(got.version.split('.')[0]).toBe(client.major);
      expect(got.onnxruntime).toBe(client.onnxruntime);
      // the same tokenizer files give the same prompt
      expect(got.prompt).toEqual(promptIds);
      // transformers.js stops at end-of-sequence; Rankwise's greedy runs on, so compare up to there
      const eos = eosId === null ? -1 : e.rankwise.indexOf(eosId, promptIds.length);
      const want = eos < 0 ? e.rankwise : e.rankwise.slice(0, eos + 1);
      expect(got.ids).toEqual(want);
      if (kind === 'uncompressed') expect(got.ids).toEqual(originalGreedy.slice(0, want.length));
    });
  }
});
