import { describe, expect, it } from 'vitest';
import type { ModelHandle } from '../../main/model/model.ts';
import type { SyntheticRecipe } from '../../main/model/synthetic.ts';
import { mulberry32 } from '../../main/model/prng.ts';
import { ModelRunner, layerWeightFeeds } from '../../main/runtime/runner.ts';
import { captureGrams, heldoutLayers } from '../../main/runtime/capture.ts';
import { compressionInputs } from '../../main/runtime/projection.ts';
import { LayerErrorMeter } from '../../main/runtime/layer-error.ts';
import type { FactorPair, KeySpace, LayerCompression } from '../../main/core/kv.ts';
import type { ModelSpec } from '../../main/model/types.ts';
import { referenceHeads, referenceLayer, ropeVec } from '../reference/forward.ts';
import { syntheticModels, tinyGpt2, tinyLlama } from '../helpers/recipes.ts';
import { maxRelError } from '../helpers/numeric.ts';

const RECIPES: Record<string, SyntheticRecipe> = { llama: tinyLlama(3), gpt2: tinyGpt2(4) };
const { engine, models } = syntheticModels(RECIPES);

const windows = (spec: ModelSpec, n: number, T: number) =>
  Array.from({ length: n }, (_, w) =>
    Int32Array.from({ length: T }, (_, t) => (w * 97 + t * 31 + 7) % spec.vocabSize),
  );

function randomPairs(heads: number, d: number, r: number, seed: number): FactorPair[] {
  const rng = mulberry32(seed);
  const m = () => Float64Array.from({ length: d * r }, () => rng() - 0.5);
  return Array.from({ length: heads }, () => ({ a: m(), b: m(), rank: r }));
}

/** x·A·Bᵀ for a row vector x. */
function throughPair(x: Float64Array, p: FactorPair, d: number): Float64Array {
  const lat = new Float64Array(p.rank);
  for (let k = 0; k < p.rank; k++) for (let i = 0; i < d; i++) lat[k] += x[i] * p.a[i * p.rank + k];
  const out = new Float64Array(d);
  for (let j = 0; j < d; j++) for (let k = 0; k < p.rank; k++) out[j] += lat[k] * p.b[j * p.rank + k];
  return out;
}

async function layerInputs(model: ModelHandle, ids: Int32Array) {
  const runner = new ModelRunner(engine(), model);
  const x = await runner.embed(ids, 1, ids.length);
  const D = model.spec.hiddenSize;
  const rows = Array.from({ length: ids.length }, (_, t) =>
    Float64Array.from(x.subarray(t * D, (t + 1) * D)),
  );
  return { runner, x, rows };
}

describe('capture', () => {
  it.each(['llama', 'gpt2'])(
    '%s: streamed Gram matrices equal the reference sums of KᵀK, QᵀQ, VᵀV',
    async (name) => {
      const model = models[name];
      const spec = model.spec;
      const runner = new ModelRunner(engine(), model);
      const wins = windows(spec, 3, 10);
      // groupBytes 1 forces one window per group: the sums must not depend on how windows stream.
      const grams = await captureGrams(runner, wins, { groupBytes: 1 });
      const d = spec.headDim;
      const G = spec.numHeads / spec.numKvHeads;
      for (let layer = 0; layer < spec.numLayers; layer++) {
        const w = await model.loadLayer(layer);
        const want = {
          kPre: [] as Float64Array[],
          kPost: [] as Float64Array[],
          qPre: [] as Float64Array[],
          qPost: [] as Float64Array[],
          v: [] as Float64Array[],
        };
        for (const key of Object.keys(want) as (keyof typeof want)[]) {
          want[key] = Array.from({ length: spec.numKvHeads }, () => new Float64Array(d * d));
        }
        for (const ids of wins) {
          // Reference inputs of this layer: the original model up to it, in float64.
          const { rows } = await layerInputs(model, ids);
          let xs: Float64Array[] = rows;
          for (let l = 0; l < layer; l++) xs = referenceLayer(spec, await model.loadLayer(l), xs);
          const heads = referenceHeads(spec, w, xs);
          const add = (acc: Float64Array, vec: Float64Array) => {
            for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) acc[i * d + j] += vec[i] * vec[j];
          };
          for (let t = 0; t < ids.length; t++) {
            for (let g = 0; g < spec.numKvHeads; g++) {
              add(want.kPre[g], heads.kPre[t][g]);
              add(want.kPost[g], heads.k[t][g]);
              add(want.v[g], heads.v[t][g]);
              for (let j = 0; j < G; j++) {
                add(want.qPre[g], heads.qPre[t][g * G + j]);
                add(want.qPost[g], heads.q[t][g * G + j]);
              }
            }
          }
        }
        expect(grams[layer].tokens).toBe(30);
        for (const key of Object.keys(want) as (keyof typeof want)[]) {
          for (let g = 0; g < spec.numKvHeads; g++)
            expect(maxRelError(grams[layer][key][g], want[key][g])).toBeLessThan(1e-4);
        }
      }
    },
  );
});

describe('compressed layer graphs', () => {
  const cases: [string, KeySpace][] = [
    ['llama', 'pre-rope'],
    ['llama', 'post-rope'],
    ['gpt2', 'folded'],
  ];
  it.each(cases)('%s %s: keys and values through A·Bᵀ equal the reference layer', async (name, keySpace) => {
    const model = models[name];
    const spec = model.spec;
    const d = spec.headDim;
    const ids = windows(spec, 1, 12)[0];
    const { runner, x, rows } = await layerInputs(model, ids);
    const w = await model.loadLayer(0);
    const c: LayerCompression = {
      keySpace,
      kRank: 2,
      vRank: 3,
      keys: randomPairs(spec.numKvHeads, d, 2, 11),
      values: randomPairs(spec.numKvHeads, d, 3, 12),
    };
    const { variant, feeds } = compressionInputs(spec, c, ids.length);
    const out = await runner.layerVariant(
      variant,
      { ...layerWeightFeeds(spec, w), ...feeds },
      x,
      1,
      ids.length,
    );
    const want = referenceLayer(spec, w, rows, {
      key: ({ pre, post }, g, t) => {
        if (keySpace === 'post-rope') return throughPair(post, c.keys![g], d);
        const rebuilt = throughPair(pre, c.keys![g], d);
        return spec.block.rope ? ropeVec(rebuilt, t, spec.block.rope.theta) : rebuilt;
      },
      value: (v, g) => throughPair(v, c.values![g], d),
    });
    expect(
      maxRelError(out.y.data as Float32Array, Float64Array.from(want.flatMap((r) => Array.from(r)))),
    ).toBeLessThan(1e-4);
  });

  it('RoPE does not commute with a low-rank projection: pre- and post-RoPE projection differ (negative test)', async () => {
    const model = models.llama;
    const spec = model.spec;
    const ids = windows(spec, 1, 12)[0];
    const { runner, x } = await layerInputs(model, ids);
    const feedsW = layerWeightFeeds(spec, await model.loadLayer(0));
    const keys = randomPairs(spec.numKvHeads, spec.headDim, 2, 5);
    const run = async (keySpace: KeySpace, pairs: FactorPair[]) => {
      const { variant, feeds } = compressionInputs(
        spec,
        {
          keySpace,
          kRank: 2,
          vRank: spec.headDim,
          keys: pairs,
          values: null,
        },
        ids.length,
      );
      return (await runner.layerVariant(variant, { ...feedsW, ...feeds }, x, 1, ids.length)).y
        .data as Float32Array;
    };
    expect(maxRelError(await run('pre-rope', keys), await run('post-rope', keys))).toBeGreaterThan(1e-2);
    // With the identity (full rank, A = B = I) both key spaces are the original layer.
    const d = spec.headDim;
    const eye = Float64Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? 1 : 0));
    const identity = Array.from({ length: spec.numKvHeads }, () => ({ a: eye, b: eye, rank: d }));
    const original = await runner.layer(feedsW, x, 1, ids.length);
    expect(maxRelError(await run('pre-rope', identity), original)).toBeLessThan(1e-6);
    expect(maxRelError(await run('post-rope', identity), original)).toBeLessThan(1e-6);
  });

  it('the in-graph error equals ‖Ŷ − Y‖ / ‖Y‖ computed outside, and is 0 for the original layer', async () => {
    const model = models.llama;
    const spec = model.spec;
    const runner = new ModelRunner(engine(), model);
    const wins = windows(spec, 2, 12);
    const layers = heldoutLayers(runner, wins);
    const first = (await layers.next()).value!;
    const meter = new LayerErrorMeter(runner, first.weights, first.batches);
    expect(await meter.error(null)).toBe(0);
    const c: LayerCompression = {
      keySpace: 'pre-rope',
      kRank: 2,
      vRank: 3,
      keys: randomPairs(2, spec.headDim, 2, 1),
      values: null,
    };
    let num = 0;
    let den = 0;
    for (const b of first.batches) {
      const { variant, feeds } = compressionInputs(spec, c, b.T);
      const y = (
        await runner.layerVariant(
          variant,
          { ...layerWeightFeeds(spec, first.weights), ...feeds },
          b.x,
          b.B,
          b.T,
        )
      ).y.data as Float32Array;
      for (let i = 0; i < y.length; i++) {
        num += (y[i] - b.y[i]) ** 2;
        den += b.y[i] ** 2;
      }
    }
    expect(await meter.error(c)).toBeCloseTo(Math.sqrt(num / den), 5);
    expect(await meter.error(c)).toBeGreaterThan(1e-3);
  });
});
