/**
 * The profile's error sweep (runtime/layer-sweep.ts) against the layer graph it stands in for: every
 * position sampled, it gives the error meter's figure for each compression; with sampled positions, the
 * relative error of the full layer's outputs at exactly those positions. On every block shape the recipes
 * produce: RoPE and learned positions, biases, per-head q/k norms, post-norms, softcaps, sliding windows.
 */
import { describe, expect, it } from 'vitest';
import type { FactorPair, KeySpace, LayerCompression } from '../../main/core/kv.ts';
import type { ModelHandle } from '../../main/model/model.ts';
import { mulberry32 } from '../../main/model/prng.ts';
import type { SyntheticRecipe } from '../../main/model/synthetic.ts';
import { heldoutLayers, type HeldoutLayer } from '../../main/runtime/capture.ts';
import { LayerErrorMeter } from '../../main/runtime/layer-error.ts';
import { LayerErrorSweep } from '../../main/runtime/layer-sweep.ts';
import { sampledRows } from '../../main/runtime/sampled-rows.ts';
import { compressionInputs } from '../../main/runtime/projection.ts';
import { layerWeightFeeds, ModelRunner } from '../../main/runtime/runner.ts';
import { syntheticModels, tinyGpt2, tinyLlama } from '../helpers/recipes.ts';
import { GEMMA2_RECIPE, QWEN3_RECIPE } from '../model/arch-recipes.ts';

const RECIPES: Record<string, SyntheticRecipe> = {
  llama: tinyLlama(5),
  gpt2: tinyGpt2(6),
  qwen3: QWEN3_RECIPE,
  gemma2: GEMMA2_RECIPE,
};
const { engine, models } = syntheticModels(RECIPES);

function randomPairs(heads: number, d: number, r: number, seed: number): FactorPair[] {
  const rng = mulberry32(seed);
  const m = () => Float64Array.from({ length: d * r }, () => rng() - 0.5);
  return Array.from({ length: heads }, () => ({ a: m(), b: m(), rank: r }));
}

/** Held-out samples of every layer: 2 windows of 20 tokens, batched together. */
async function layersOf(model: ModelHandle): Promise<{ runner: ModelRunner; layers: HeldoutLayer[] }> {
  const runner = new ModelRunner(engine(), model);
  const V = model.spec.vocabSize;
  const wins = [0, 1].map((w) => Int32Array.from({ length: 20 }, (_, t) => (w * 89 + t * 37 + 3) % V));
  const layers: HeldoutLayer[] = [];
  for await (const l of heldoutLayers(runner, wins)) layers.push(l);
  return { runner, layers };
}

function compressions(model: ModelHandle): LayerCompression[] {
  const { numKvHeads: Hkv, headDim: d } = model.spec;
  const spaces: KeySpace[] = model.spec.block.rope ? ['pre-rope', 'post-rope'] : ['folded'];
  return spaces.flatMap((keySpace, s) => [
    { keySpace, kRank: 2, vRank: d, keys: randomPairs(Hkv, d, 2, 10 + s), values: null },
    { keySpace, kRank: d, vRank: 3, keys: null, values: randomPairs(Hkv, d, 3, 20 + s) },
    {
      keySpace,
      kRank: 3,
      vRank: 2,
      keys: randomPairs(Hkv, d, 3, 30 + s),
      values: randomPairs(Hkv, d, 2, 40 + s),
    },
  ]);
}

/** ‖Ŷ − Y‖ / ‖Y‖ over the given positions of every window, from full layer forwards. */
async function errorAtRows(runner: ModelRunner, l: HeldoutLayer, c: LayerCompression, rows: Int32Array[]) {
  const spec = runner.spec;
  const D = spec.hiddenSize;
  let num = 0;
  let den = 0;
  for (const [i, b] of l.batches.entries()) {
    const { variant, feeds } = compressionInputs(spec, c, b.T);
    const out = await runner.layerVariant(
      variant,
      { ...layerWeightFeeds(spec, l.weights), ...feeds },
      b.x,
      b.B,
      b.T,
      b.layer,
    );
    const y = out.y.data as Float32Array;
    for (let s = 0; s < b.B; s++)
      for (const t of rows[i])
        for (let j = 0; j < D; j++) {
          const at = (s * b.T + t) * D + j;
          num += (y[at] - b.y[at]) ** 2;
          den += b.y[at] ** 2;
        }
  }
  return Math.sqrt(num / den);
}

describe('the profile sweep', () => {
  it.each(Object.keys(RECIPES))(
    '%s: with every position, the error meter figure of each compression',
    async (name) => {
      const model = models[name];
      const { runner, layers } = await layersOf(model);
      const cs = compressions(model);
      for (const l of layers) {
        const meter = new LayerErrorMeter(runner, l.weights, l.batches);
        const sweep = new LayerErrorSweep(runner, l.weights, l.batches, { rowsPerWindow: Infinity });
        const got = await sweep.errors([...cs, null]);
        for (const [i, c] of cs.entries()) {
          const want = await meter.error(c);
          expect(want).toBeGreaterThan(1e-3);
          expect(Math.abs(got[i] - want) / want, `${name} layer ${l.layer} #${i}`).toBeLessThan(1e-4);
        }
        expect(got[cs.length]).toBeLessThan(1e-6);
      }
    },
  );

  it.each(Object.keys(RECIPES))(
    '%s: with sampled positions, the full layer error at exactly those',
    async (name) => {
      const model = models[name];
      const { runner, layers } = await layersOf(model);
      const cs = compressions(model);
      for (const l of layers) {
        const sweep = new LayerErrorSweep(runner, l.weights, l.batches, { rowsPerWindow: 6, seed: 3 });
        // one pair per run as well as all together: chunking must not change a figure
        const tiny = new LayerErrorSweep(runner, l.weights, l.batches, {
          rowsPerWindow: 6,
          seed: 3,
          chunkBytes: 1,
        });
        const got = await sweep.errors(cs);
        expect(await tiny.errors(cs)).toEqual(got);
        const rows = sweep.rowsUsed();
        for (const [i, c] of cs.entries()) {
          const want = await errorAtRows(runner, l, c, rows);
          expect(Math.abs(got[i] - want) / want, `${name} layer ${l.layer} #${i}`).toBeLessThan(1e-4);
        }
      }
    },
  );
});

describe('sampledRows', () => {
  it('takes every position when asked for as many, else one per stratum, reproducibly', () => {
    expect(Array.from(sampledRows(5, 8, 1))).toEqual([0, 1, 2, 3, 4]);
    const rows = sampledRows(512, 64, 7);
    expect(rows).toHaveLength(64);
    rows.forEach((t, i) => {
      expect(t).toBeGreaterThanOrEqual(i * 8);
      expect(t).toBeLessThan((i + 1) * 8);
    });
    expect(sampledRows(512, 64, 7)).toEqual(rows);
    expect(sampledRows(512, 64, 8)).not.toEqual(rows);
  });
});
