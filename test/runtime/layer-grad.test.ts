import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayerErrorSweep } from '../../main/runtime/layer-sweep.ts';

const identityOf = (d: number) => Float64Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? 1 : 0));
import { openModel, type ModelHandle } from '../../main/model/model.ts';
import { writeSyntheticModel, type SyntheticRecipe } from '../../main/model/synthetic.ts';
import { mulberry32 } from '../../main/model/prng.ts';
import type { LayerWeights, ModelSpec } from '../../main/model/types.ts';
import type { HeldoutBatch } from '../../main/runtime/capture.ts';
import { Engine, f32 } from '../../main/runtime/engine.ts';
import { LAYER_INPUTS } from '../../main/runtime/graphs/decoder-layer.ts';
import { LayerGradient } from '../../main/runtime/layer-grad.ts';
import { ModelRunner, layerWeightFeeds } from '../../main/runtime/runner.ts';
import { referenceLayer, ropeVec } from '../reference/forward.ts';
import {
  fdError,
  genericProjections,
  gradRelError,
  probes,
  secondLayerBatches,
  stiefelProjections,
} from './grad-check.ts';
import { tempDir } from '../helpers/paths.ts';
import { tinyGpt2, tinyLlama } from '../helpers/recipes.ts';

const tmp = tempDir();
let engine: Engine;
// llama: GQA (G = 2), RoPE, q/k/v biases.
const RECIPES: Record<string, SyntheticRecipe> = {
  llama: tinyLlama(21, { maxPositions: 64 }),
  gpt2: tinyGpt2(22, { maxPositions: 64 }),
};

interface Setup {
  model: ModelHandle;
  runner: ModelRunner;
  weights: LayerWeights;
  /** Two batches of different shapes ([2, 7] and [1, 10]): the loss must combine them as one. */
  batches: HeldoutBatch[];
}
const setups: Record<string, Setup> = {};

beforeAll(async () => {
  engine = await Engine.create({ device: 'cpu' });
  for (const [name, recipe] of Object.entries(RECIPES)) {
    await writeSyntheticModel(`${tmp.dir}/${name}`, recipe);
    const model = await openModel(`${tmp.dir}/${name}`);
    const runner = new ModelRunner(engine, model);
    // Layer 1 of the model, whose inputs are layer 0's outputs.
    const { weights, batches } = await secondLayerBatches(model, runner);
    setups[name] = { model, runner, weights, batches };
  }
});
afterAll(async () => {
  await engine.release();
  for (const s of Object.values(setups)) await s.model.close();
  tmp.cleanup();
});

/** The float64 reference layer's ‖Ŷ − Y‖² / ‖Y‖² over all batches, with k → k·M_K pre-RoPE, v → v·M_V. */
function referenceLoss(
  spec: ModelSpec,
  w: LayerWeights,
  batches: HeldoutBatch[],
  mK: Float64Array[],
  mV: Float64Array[],
) {
  const D = spec.hiddenSize;
  const d = spec.headDim;
  const times = (x: Float64Array, m: Float64Array) => {
    const out = new Float64Array(d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) out[j] += x[i] * m[i * d + j];
    return out;
  };
  let err = 0;
  let ref = 0;
  for (const b of batches) {
    for (let s = 0; s < b.B; s++) {
      const rows = Array.from({ length: b.T }, (_, t) =>
        Float64Array.from(b.x.subarray((s * b.T + t) * D, (s * b.T + t + 1) * D)),
      );
      const out = referenceLayer(spec, w, rows, {
        key: ({ pre }, g, t) => {
          const k = times(pre, mK[g]);
          return spec.block.rope ? ropeVec(k, t, spec.block.rope.theta) : k;
        },
        value: (v, g) => times(v, mV[g]),
      });
      out.forEach((row, t) =>
        row.forEach((v, i) => {
          const yv = b.y[(s * b.T + t) * D + i];
          err += (v - yv) ** 2;
          ref += yv ** 2;
        }),
      );
    }
  }
  return err / ref;
}

const report: string[] = [];
afterAll(() => console.log(`layer-grad measurements:\n${report.join('\n')}`));

describe.each(['llama', 'gpt2'])('%s layer gradient', (name) => {
  const points = [
    [
      'M = P·Pᵀ (rank 3 of 8)',
      (s: ModelSpec, rng: () => number) => stiefelProjections(s.numKvHeads, s.headDim, 3, rng),
    ],
    [
      'generic non-symmetric M',
      (s: ModelSpec, rng: () => number) => genericProjections(s.numKvHeads, s.headDim, rng),
    ],
  ] as const;

  it.each(points)('float64 and float32 gradients match finite differences at %s', async (label, make) => {
    const { runner, weights, batches } = setups[name];
    const spec = runner.spec;
    const rng = mulberry32(label.length * 7 + name.length);
    const mK = make(spec, rng);
    const mV = make(spec, rng);
    const exact = new LayerGradient(runner, weights, batches, { dtype: 'float64' });
    const fast = new LayerGradient(runner, weights, batches);
    const g64 = await exact.evaluate(mK, mV);
    const g32 = await fast.evaluate(mK, mV);
    expect(g64.loss).toBeGreaterThan(1e-4);
    const list = probes(spec, rng);
    const e64 = await fdError(exact, g64, mK, mV, list);
    // float32 analytic gradient against float64 differences: what training actually gets.
    const e32 = await fdError(exact, g32, mK, mV, list);
    const full32 = gradRelError(g32, g64);
    report.push(
      `${name} ${label}: loss ${g64.loss.toExponential(3)}; FD rel err float64 ${e64.toExponential(2)}, ` +
        `float32 ${e32.toExponential(2)}; ‖g32 − g64‖/‖g64‖ ${full32.toExponential(2)}`,
    );
    expect(e64).toBeLessThan(1e-6);
    expect(e32).toBeLessThan(1e-2);
    expect(full32).toBeLessThan(1e-3);
    expect(Math.abs(g32.loss - g64.loss) / g64.loss).toBeLessThan(1e-4);
  });

  it('loss equals the error variant graph (float32) and the float64 reference layer', async () => {
    const { runner, weights, batches } = setups[name];
    const spec = runner.spec;
    const rng = mulberry32(99);
    const mK = stiefelProjections(spec.numKvHeads, spec.headDim, 3, rng);
    const mV = stiefelProjections(spec.numKvHeads, spec.headDim, 5, rng);
    const dims = [spec.numKvHeads, spec.headDim, spec.headDim];
    const stack = (ms: Float64Array[]) => f32(Float32Array.from(ms.flatMap((m) => Array.from(m))), dims);
    let err = 0;
    let ref = 0;
    for (const b of batches) {
      const out = await runner.layerVariant(
        { keyProjection: 'pre', valueProjection: true, error: true },
        {
          ...layerWeightFeeds(spec, weights),
          [LAYER_INPUTS.kProj]: stack(mK),
          [LAYER_INPUTS.vProj]: stack(mV),
          [LAYER_INPUTS.yRef]: f32(b.y, [b.B, b.T, spec.hiddenSize]),
        },
        b.x,
        b.B,
        b.T,
      );
      err += (out.sq_err.data as Float32Array)[0];
      ref += (out.sq_ref.data as Float32Array)[0];
    }
    const want = referenceLoss(spec, weights, batches, mK, mV);
    const g32 = await new LayerGradient(runner, weights, batches).evaluate(mK, mV);
    const g64 = await new LayerGradient(runner, weights, batches, { dtype: 'float64' }).evaluate(mK, mV);
    report.push(
      `${name} loss: reference ${want.toExponential(6)}, float64 graph rel diff ` +
        `${(Math.abs(g64.loss - want) / want).toExponential(2)}, float32 graph ` +
        `${(Math.abs(g32.loss - want) / want).toExponential(2)}, error variant ` +
        `${(Math.abs(err / ref - g32.loss) / g32.loss).toExponential(2)}`,
    );
    expect(Math.abs(g64.loss - want) / want).toBeLessThan(1e-9);
    expect(Math.abs(g32.loss - want) / want).toBeLessThan(1e-4);
    expect(Math.abs(err / ref - g32.loss) / g32.loss).toBeLessThan(1e-5);
  });

  it('on sampled positions: matches finite differences, and its loss is the sweep error at those rows', async () => {
    const { runner, weights, batches } = setups[name];
    const spec = runner.spec;
    const rng = mulberry32(31 + name.length);
    const mK = stiefelProjections(spec.numKvHeads, spec.headDim, 3, rng);
    const mV = stiefelProjections(spec.numKvHeads, spec.headDim, 4, rng);
    const sampled = { rowsPerWindow: 3, seed: 2 };
    const exact = new LayerGradient(runner, weights, batches, { dtype: 'float64', ...sampled });
    const g64 = await exact.evaluate(mK, mV);
    expect(await fdError(exact, g64, mK, mV, probes(spec, rng))).toBeLessThan(1e-6);
    // a different loss from the one on every position, so the rows really are left out
    const all = await new LayerGradient(runner, weights, batches, { dtype: 'float64' }).evaluate(mK, mV);
    expect(Math.abs(all.loss - g64.loss) / all.loss).toBeGreaterThan(1e-3);
    // the same rows, measured by the profile's sweep: ℒ = error²
    const d = spec.headDim;
    const pairs = (ms: Float64Array[]) => ms.map((m) => ({ a: m, b: identityOf(d), rank: d }));
    const sweep = new LayerErrorSweep(runner, weights, batches, sampled);
    const e = await sweep.error({
      keySpace: 'pre-rope',
      kRank: 3,
      vRank: 4,
      keys: pairs(mK),
      values: pairs(mV),
    });
    expect(Math.abs(e * e - g64.loss) / g64.loss).toBeLessThan(1e-4);
  });

  it('identity projections give zero loss and zero gradient; batches combine as one', async () => {
    const { runner, weights, batches } = setups[name];
    const exact = new LayerGradient(runner, weights, batches, { dtype: 'float64' });
    const id = await exact.evaluate(null, null);
    expect(id.loss).toBeLessThan(1e-12);
    for (const m of [...id.gradK, ...id.gradV]) for (const v of m) expect(Math.abs(v)).toBeLessThan(1e-5);
    // ℒ over both batches is Σ err / Σ ref, not the mean of per-batch ratios, and so is its gradient.
    const spec = runner.spec;
    const rng = mulberry32(5);
    const mK = stiefelProjections(spec.numKvHeads, spec.headDim, 2, rng);
    const both = await exact.evaluate(mK, null);
    const parts = await Promise.all(
      batches.map((b) => new LayerGradient(runner, weights, [b], { dtype: 'float64' }).evaluate(mK, null)),
    );
    const refs = batches.map((b) => b.y.reduce((s, v) => s + v * v, 0));
    const total = refs[0] + refs[1];
    expect(both.loss).toBeCloseTo((parts[0].loss * refs[0] + parts[1].loss * refs[1]) / total, 12);
    const combined = both.gradK.map((m, h) =>
      m.map((_, i) => (parts[0].gradK[h][i] * refs[0] + parts[1].gradK[h][i] * refs[1]) / total),
    );
    expect(
      gradRelError({ ...both, gradV: both.gradK }, { ...both, gradK: combined, gradV: combined }),
    ).toBeLessThan(1e-10);
  });
});
