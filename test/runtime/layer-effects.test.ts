/**
 * The end-to-end probes (runtime/layer-effects.ts) against whole forwards of the models they stand for:
 * a probe's ΔNLL is the perplexity stage's mean NLL of the model with that one layer changed, minus the
 * base model's, whether the base is the original or a compressed model; forks that share a pass do not
 * leak into each other.
 */
import { describe, expect, it } from 'vitest';
import type { FactorPair, LayerCompression } from '../../main/core/kv.ts';
import { mulberry32 } from '../../main/model/prng.ts';
import { layerEffects } from '../../main/runtime/layer-effects.ts';
import { perplexity } from '../../main/runtime/perplexity.ts';
import { ModelRunner, withCompression } from '../../main/runtime/runner.ts';
import { syntheticModels, tinyGpt2, tinyLlama } from '../helpers/recipes.ts';

const { engine, models } = syntheticModels({
  llama: tinyLlama(21, { numLayers: 3 }),
  gpt2: tinyGpt2(22, { numLayers: 3 }),
});

function randomPairs(heads: number, d: number, r: number, rng: () => number): FactorPair[] {
  const m = () => Float64Array.from({ length: d * r }, () => rng() - 0.5);
  return Array.from({ length: heads }, () => ({ a: m(), b: m(), rank: r }));
}

function compression(
  name: string,
  r: number,
  rng: () => number,
  sides: 'both' | 'keys' | 'values' = 'both',
): LayerCompression {
  const spec = models[name].spec;
  const pairs = () => randomPairs(spec.numKvHeads, spec.headDim, r, rng);
  return {
    keySpace: spec.block.rope ? 'pre-rope' : 'folded',
    kRank: r,
    vRank: r,
    keys: sides === 'values' ? null : pairs(),
    values: sides === 'keys' ? null : pairs(),
  };
}

for (const name of ['llama', 'gpt2']) {
  describe(`layer effects on ${name}`, () => {
    const windows = () => {
      const V = models[name].spec.vocabSize;
      // two lengths, so the pass runs more than one micro-batch
      return [24, 24, 17].map((T, w) => Int32Array.from({ length: T }, (_, t) => (w * 71 + t * 29 + 5) % V));
    };
    const meanNll = async (comps: (LayerCompression | null)[]) =>
      (await perplexity(new ModelRunner(engine(), withCompression(models[name], comps)), windows())).meanNll;

    it('each probe is the whole model with that layer changed, against the original', async () => {
      const rng = mulberry32(7);
      const probes = [
        [compression(name, 2, rng), compression(name, 4, rng, 'keys')],
        [],
        [compression(name, 1, rng, 'values'), compression(name, 3, rng), compression(name, 6, rng)],
      ];
      const runner = new ModelRunner(engine(), models[name]);
      const got = await layerEffects(runner, windows(), probes, { groupBytes: 1 });
      const original = await meanNll([null, null, null]);
      expect(Math.abs(got.baseNll - original)).toBeLessThan(1e-9);
      for (const [layer, cs] of probes.entries()) {
        expect(got.effects[layer]).toHaveLength(cs.length);
        for (const [p, c] of cs.entries()) {
          const comps = [null, null, null] as (LayerCompression | null)[];
          comps[layer] = c;
          const want = (await meanNll(comps)) - original;
          // the same graphs on the same batches: equal to rounding of the sums
          expect(Math.abs(got.effects[layer][p] - want)).toBeLessThan(1e-9);
          expect(Math.abs(want)).toBeGreaterThan(1e-6);
        }
      }
    });

    it('around a compressed base model, a probe replaces its layer and an uncompressed probe restores it', async () => {
      const rng = mulberry32(8);
      const base = [compression(name, 3, rng), compression(name, 2, rng), null];
      const probes = [[null, compression(name, 5, rng)], [null], [compression(name, 2, rng)]];
      const runner = new ModelRunner(engine(), models[name]);
      const got = await layerEffects(runner, windows(), probes, { base });
      const baseNll = await meanNll(base);
      expect(Math.abs(got.baseNll - baseNll)).toBeLessThan(1e-9);
      for (const [layer, cs] of probes.entries()) {
        for (const [p, c] of cs.entries()) {
          const comps = [...base];
          comps[layer] = c;
          expect(Math.abs(got.effects[layer][p] - ((await meanNll(comps)) - baseNll))).toBeLessThan(1e-9);
        }
      }
    });
  });
}
