/**
 * What every architecture's test file checks the same way: a config folder of the family's own HF
 * config.json, the codec round trip on a synthetic checkpoint (stored → normalised → stored, and back),
 * the onnxruntime forward against the float64 reference, and compress + export through onnxruntime with
 * every method.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';

import type { KeySpace, MethodId } from '../../main/core/kv.ts';
import { compressToPlan, type CompressSettings } from '../../main/jobs/compress.ts';
import { adapterFor } from '../../main/model/arch/registry.ts';
import { writeCheckpoint } from '../../main/model/checkpoint.ts';
import { readModelSpec } from '../../main/model/config.ts';
import { openModel, type ModelHandle } from '../../main/model/model.ts';
import { writeSyntheticModel, type SyntheticRecipe } from '../../main/model/synthetic.ts';
import type { EmbeddingWeights, LayerWeights, ModelSpec } from '../../main/model/types.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { forwardSequences } from '../../main/runtime/forward.ts';
import { ModelRunner } from '../../main/runtime/runner.ts';
import { checkExportRoundTrip } from '../helpers/export-check.ts';
import { maxRelError } from '../helpers/numeric.ts';
import { TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { referenceForward, referenceNll } from '../reference/forward.ts';
import { expectRankwiseError } from './fixtures.ts';

/** Writes `config` as the only file of a new folder under `root` and parses it. */
export async function specOf(root: string, config: Record<string, unknown>): Promise<ModelSpec> {
  return readModelSpec(configFolder(root, config).dir);
}

let folders = 0;
export function configFolder(root: string, config: Record<string, unknown>): { dir: string; file: string } {
  const dir = path.join(root, `cfg${folders++}`);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config));
  return { dir, file };
}

export async function loadAll(m: ModelHandle): Promise<{ emb: EmbeddingWeights; layers: LayerWeights[] }> {
  const layers: LayerWeights[] = [];
  for (let i = 0; i < m.spec.numLayers; i++) layers.push(await m.loadLayer(i));
  return { emb: await m.loadEmbeddings(), layers };
}

/**
 * The codec both ways on the model in `dir` (written by the synthetic writer through the same codec):
 * re-encoding what was loaded gives every stored tensor back exactly and nothing else, and a checkpoint
 * written from the encoded tensors loads to the same normalised weights.
 */
export async function expectCodecRoundTrip(dir: string, out: string): Promise<void> {
  const m = await openModel(dir);
  try {
    const adapter = adapterFor(m.spec.modelType);
    const root = adapter.codec.root((n) => m.checkpoint.has(n));
    const { emb, layers } = await loadAll(m);
    const encoded = [
      ...adapter.encodeEmbeddings(m.spec, emb, root),
      ...layers.flatMap((w, i) => adapter.encodeLayer(m.spec, i, w, root)),
    ];
    expect(encoded.map((t) => t.name).sort()).toEqual(m.checkpoint.names());
    for (const t of encoded) {
      expect(t.shape, t.name).toEqual(m.checkpoint.info(t.name).shape);
      expect(t.data, t.name).toEqual(await m.checkpoint.readFloat32(t.name));
    }
    fs.mkdirSync(out, { recursive: true });
    fs.copyFileSync(path.join(dir, 'config.json'), path.join(out, 'config.json'));
    await writeCheckpoint(
      out,
      encoded.map((t) => ({ name: t.name, dtype: m.spec.dtype, shape: t.shape, data: t.data })),
    );
    const back = await openModel(out);
    try {
      const again = await loadAll(back);
      expect(again.layers).toEqual(layers);
      expect(again.emb.tokens).toEqual(emb.tokens);
      expect(again.emb.finalNorm).toEqual(emb.finalNorm);
      expect(again.emb.lmHead).toEqual(emb.lmHead);
    } finally {
      await back.close();
    }
  } finally {
    await m.close();
  }
}

/**
 * The engine's logits and NLLs on a few sequences (longer than any synthetic sliding window) against the
 * float64 reference reading the same spec. Returns the reference logits' spread, to show they carry signal.
 */
export async function expectForwardMatchesReference(dir: string, tolerance = 1e-5): Promise<void> {
  const engine = await Engine.create({ device: 'cpu' });
  const m = await openModel(dir);
  try {
    const spec = m.spec;
    const seqs = [
      Int32Array.from({ length: 24 }, (_, t) => (t * 37 + 5) % spec.vocabSize),
      Int32Array.from({ length: 19 }, (_, t) => (t * 11 + 200) % spec.vocabSize),
      Int32Array.from({ length: 6 }, (_, t) => (t * 53 + 1) % spec.vocabSize),
    ];
    const { logits, nll } = await forwardSequences(new ModelRunner(engine, m), seqs, { logits: 'all' });
    const { emb, layers } = await loadAll(m);
    seqs.forEach((ids, s) => {
      const { logits: want, residualRms } = referenceForward(spec, emb, layers, ids);
      const flat = Float64Array.from(want.flatMap((row) => Array.from(row)));
      expect(maxRelError((logits as Float32Array[])[s], flat)).toBeLessThan(tolerance);
      // a degenerate model would pass the comparison trivially
      expect(Math.max(...flat) - Math.min(...flat)).toBeGreaterThan(1e-2);
      expect(Math.max(...residualRms) / Math.min(...residualRms)).toBeLessThan(10);
      const wantNll = want.slice(0, -1).map((row, t) => referenceNll(row, ids[t + 1]));
      expect(maxRelError(nll[s], wantNll)).toBeLessThan(tolerance);
    });
  } finally {
    await m.close();
    await engine.release();
  }
}

/** A short excerpt of the TinyStories text (the synthetic tokenizer has no fast path). */
export function excerpt(root: string): string {
  const file = path.join(root, 'excerpt.txt');
  if (!fs.existsSync(file))
    fs.writeFileSync(file, fs.readFileSync(TINYSTORIES_TEXT, 'utf8').slice(0, 40_000));
  return file;
}

/**
 * The per-head ranks each method is asked for. Thin keys is the keys-only method (values fall back to PCA
 * only below full rank): leaving its values whole also covers the export of a layer with uncompressed values.
 */
function archRanks(method: MethodId, headDim: number): { k: number; v: number } {
  return method === 'thinkeys' ? { k: 4, v: headDim } : { k: 4, v: 2 };
}

/**
 * Few StiefAttention steps on one window, a fraction of a second per family where the defaults take most of a
 * minute. Fewer than about 20 leave every rank at EigenAttention's start on these synthetic layers, and the
 * export would then never see a learned basis.
 */
const QUICK_STIEF = { steps: 20, evalEvery: 5, patience: 4, trainWindows: 1 };

const settingsFor = (dir: string, root: string, method: MethodId, keySpace?: KeySpace): CompressSettings => {
  const text = excerpt(root);
  return {
    modelDir: dir,
    calib: text,
    eval: text,
    method,
    keySpace,
    window: 64,
    calibWindows: 4,
    evalWindows: 2,
    ...(method === 'stief' ? { stief: QUICK_STIEF } : {}),
  };
};

/**
 * `method` at archRanks, exported and run through onnxruntime with its cache (checkExportRoundTrip: the
 * folder reloads to the in-memory perplexity and decodes as the in-memory compressed model does); the
 * exported config names the method and the ranks asked for, in `keySpace` on every layer when one is given.
 */
export async function expectCompressExport(
  dir: string,
  out: string,
  root: string,
  method: MethodId,
  keySpace?: 'pre-rope' | 'post-rope',
): Promise<ModelSpec> {
  const ranks = archRanks(method, (await readModelSpec(dir)).headDim);
  const { spec, report } = await checkExportRoundTrip(
    { ...settingsFor(dir, root, method, keySpace), ranks },
    out,
  );
  expect(
    Number.isFinite(report.perplexity.compressed),
    `compressed perplexity ${report.perplexity.compressed}`,
  ).toBe(true);
  expect(spec.kvCompression!.map((l) => [l.kRank, l.vRank])).toEqual(
    Array.from({ length: spec.numLayers }, () => [ranks.k, ranks.v]),
  );
  if (keySpace) for (const l of spec.kvCompression!) expect(l.keySpace).toBe(keySpace);
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  expect(config.kv_compression.method).toBe(method);
  // a stief job whose training silently did nothing would export EigenAttention's bases and still pass
  if (method === 'stief') expect(report.training!.steps).toBeGreaterThan(0);
  return spec;
}

/** The compress job refuses `method` on the model in `dir` with a bad-input error matching `pattern`. */
export async function expectCompressRefused(
  dir: string,
  root: string,
  method: MethodId,
  pattern: RegExp,
): Promise<void> {
  const ranks = archRanks(method, (await readModelSpec(dir)).headDim);
  await expectRankwiseError(
    compressToPlan({ ...settingsFor(dir, root, method), ranks }),
    'bad-input',
    pattern,
  );
}

/**
 * A family's synthetic checkpoint for one test file: written once before its tests into a temporary
 * folder removed after them. `root()` is that folder (for exports and texts), `dir()` the checkpoint.
 */
export function familyCheckpoint(
  name: string,
  recipe: SyntheticRecipe,
): { root: () => string; dir: () => string } {
  let tmp: ReturnType<typeof tempDir> | undefined;
  beforeAll(async () => {
    tmp = tempDir(`rankwise-${name}-`);
    await writeSyntheticModel(path.join(tmp.dir, 'synthetic'), recipe);
  });
  afterAll(() => tmp?.cleanup());
  return { root: () => tmp!.dir, dir: () => path.join(tmp!.dir, 'synthetic') };
}
