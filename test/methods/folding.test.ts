import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openModel, type ModelHandle } from '../../main/model/model.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import { mulberry32 } from '../../main/model/prng.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { ModelRunner, layerWeightFeeds } from '../../main/runtime/runner.ts';
import { compressionInputs } from '../../main/runtime/projection.ts';
import { foldLayer } from '../../main/model/fold.ts';
import type { FactorPair, LayerCompression } from '../../main/core/kv.ts';
import { referenceLayer } from '../reference/forward.ts';
import { tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
let engine: Engine;
const models: Record<string, ModelHandle> = {};

beforeAll(async () => {
  engine = await Engine.create();
  const base = {
    hiddenSize: 32,
    numLayers: 1,
    numHeads: 4,
    intermediateSize: 48,
    maxPositions: 64,
    dtype: 'F32',
    tie: true,
  } as const;
  await writeSyntheticModel(`${tmp.dir}/gpt2`, { ...base, modelType: 'gpt2', numKvHeads: 4, seed: 41 });
  await writeSyntheticModel(`${tmp.dir}/qwen2`, { ...base, modelType: 'qwen2', numKvHeads: 2, seed: 42 });
  models.gpt2 = await openModel(`${tmp.dir}/gpt2`);
  models.qwen2 = await openModel(`${tmp.dir}/qwen2`);
});
afterAll(async () => {
  await engine.release();
  for (const m of Object.values(models)) await m.close();
  tmp.cleanup();
});

function pairs(heads: number, d: number, r: number, seed: number, orthonormal: boolean): FactorPair[] {
  const rng = mulberry32(seed);
  return Array.from({ length: heads }, () => {
    const a = Float64Array.from({ length: d * r }, () => rng() - 0.5);
    const b = orthonormal ? a : Float64Array.from({ length: d * r }, () => rng() - 0.5);
    return { a, b, rank: r };
  });
}

describe('folding identities (methods.md §2.1, §11.5): folded weights equal the projection graph', () => {
  const cases: [string, boolean][] = [
    ['gpt2', true],
    ['gpt2', false],
    ['qwen2', true],
    ['qwen2', false],
  ];
  it.each(cases)('%s, orthonormal pair: %s', async (name, orthonormal) => {
    const model = models[name];
    const spec = model.spec;
    const d = spec.headDim;
    const w = await model.loadLayer(0);
    const c: LayerCompression = {
      // keys fold only without RoPE (gpt2); qwen2 folds its values (with biases) and keeps full keys
      keySpace: spec.block.rope ? 'pre-rope' : 'folded',
      kRank: 3,
      vRank: 5,
      keys: spec.block.rope ? null : pairs(spec.numKvHeads, d, 3, 7, orthonormal),
      values: pairs(spec.numKvHeads, d, 5, 8, orthonormal),
    };
    const T = 9;
    const ids = Int32Array.from({ length: T }, (_, t) => (t * 13 + 2) % spec.vocabSize);
    const runner = new ModelRunner(engine, model);
    const x = await runner.embed(ids, 1, T);
    const { variant, feeds } = compressionInputs(spec, c, T);
    const graph = (await runner.layerVariant(variant, { ...layerWeightFeeds(spec, w), ...feeds }, x, 1, T)).y
      .data as Float32Array;
    const folded = foldLayer(spec, w, c);
    expect(folded.v.out).toBe(spec.numKvHeads * 5);
    expect(folded.o.in).toBe(spec.numHeads * 5);
    if (!spec.block.rope) expect(folded.k.out).toBe(spec.numKvHeads * 3);
    const D = spec.hiddenSize;
    const rows = Array.from({ length: T }, (_, t) => Float64Array.from(x.subarray(t * D, (t + 1) * D)));
    const want = referenceLayer(spec, folded, rows).flatMap((r) => Array.from(r));
    let num = 0;
    let den = 0;
    want.forEach((v, i) => {
      num = Math.max(num, Math.abs(graph[i] - v));
      den = Math.max(den, Math.abs(v));
    });
    expect(num / den).toBeLessThan(1e-5);
  });
});
