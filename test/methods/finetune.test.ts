/**
 * Fine-tuning of fitted factor pairs (methods/finetune.ts) on a synthetic llama layer (RoPE, GQA): the chain
 * rule from ∂ℒ/∂M to the factors against finite differences of the float64 loss, held-out improvement from
 * the closed forms, divergence kept from returning anything worse or non-finite, and which sides train.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { LayerCompression } from '../../main/core/kv.ts';
import { balancedPair, TrainableFactors } from '../../main/methods/finetune-factors.ts';
import { pairProduct } from '../../main/runtime/projection.ts';
import { finetuneLayer, type FinetuneArgs } from '../../main/methods/finetune.ts';
import { fitKqsvd } from '../../main/methods/kqsvd.ts';
import { fitKsvd } from '../../main/methods/ksvd.ts';
import { mulberry32 } from '../../main/model/prng.ts';
import type { LayerWeights } from '../../main/model/types.ts';
import { captureGrams, layerSamples, type HeldoutBatch } from '../../main/runtime/capture.ts';
import type { HeldoutErrors } from '../../main/runtime/layer-error.ts';
import { LayerGradient } from '../../main/runtime/layer-grad.ts';
import { LayerErrorSweep } from '../../main/runtime/layer-sweep.ts';
import { ModelRunner } from '../../main/runtime/runner.ts';
import type { LayerCapture } from '../../main/methods/types.ts';
import { syntheticModels, tinyLlama } from '../helpers/recipes.ts';

const { engine, models } = syntheticModels({ llama: tinyLlama(41) });

/** Layer 1 of the model: its statistics over the fitting windows and samples of two other window sets. */
interface Setup {
  runner: ModelRunner;
  capture: LayerCapture;
  weights: LayerWeights;
  train: HeldoutBatch[];
  held: HeldoutBatch[];
}
let setup: Setup;

beforeAll(async () => {
  const model = models.llama;
  const runner = new ModelRunner(engine(), model);
  const rng = mulberry32(7);
  const windows = (n: number, T: number) =>
    Array.from({ length: n }, () =>
      Int32Array.from({ length: T }, () => Math.floor(rng() * model.spec.vocabSize)),
    );
  const grams = await captureGrams(runner, windows(8, 32));
  // enough positions that 2 × 2 heads × (A, B) of 8×2 do not simply fit the training windows
  const held = windows(6, 64);
  const train = windows(16, 64);
  for await (const s of layerSamples(runner, [held, train])) {
    if (s.layer !== 1) continue;
    setup = {
      runner,
      capture: { layer: 1, weights: s.weights, grams: grams[1] },
      weights: s.weights,
      held: s.sets[0],
      train: s.sets[1],
    };
  }
});

const base = (compression: LayerCompression, settings: FinetuneArgs['settings']): FinetuneArgs => ({
  runner: setup.runner,
  weights: setup.weights,
  layer: 1,
  compression,
  train: setup.train,
  heldout: setup.held,
  settings,
});

const d = () => setup.runner.spec.headDim;
const kqsvdAt = (k: number, v: number) => fitKqsvd(setup.capture, setup.runner.spec, 'pre-rope').at(k, v);

function factorsOf(c: LayerCompression): Float64Array[] {
  return [...(c.keys ?? []), ...(c.values ?? [])].flatMap((p) => [p.a, p.b]);
}
const finite = (c: LayerCompression) => factorsOf(c).every((f) => f.every(Number.isFinite));

describe('fine-tuning factors', () => {
  it('balancing keeps A·Bᵀ and equalises the factors of an oblique KQ-SVD pair', () => {
    const pair = kqsvdAt(3, 3).keys![0];
    const bal = balancedPair(pair, d());
    const before = pairProduct(pair.a, pair.b, d(), 3);
    const after = pairProduct(bal.a, bal.b, d(), 3);
    const scale = Math.max(...before.map(Math.abs));
    before.forEach((v, i) => expect(Math.abs(after[i] - v)).toBeLessThan(1e-10 * scale));
    const norm = (m: Float64Array) => Math.sqrt(m.reduce((s, v) => s + v * v, 0));
    expect(norm(bal.a) / norm(bal.b)).toBeCloseTo(1, 8);
  });

  it('∂ℒ/∂A = G·B and ∂ℒ/∂B = Gᵀ·A match central differences of the float64 loss', async () => {
    const start = kqsvdAt(3, 2);
    const factors = new TrainableFactors(start, d(), ['keys', 'values']);
    const exact = new LayerGradient(setup.runner, setup.weights, setup.train, { dtype: 'float64' });
    const loss = async () => {
      const { keys, values } = factors.projections();
      return (await exact.evaluate(keys, values)).loss;
    };
    const { keys, values } = factors.projections();
    const at = await exact.evaluate(keys, values);
    expect(at.loss).toBeGreaterThan(1e-3);
    const analytic = factors.gradient(at);
    const top = Math.max(...analytic.map(Math.abs));
    // One entry of A and one of B in every head of both sides: keys (rank 3) first, then values (rank 2).
    const Hkv = setup.runner.spec.numKvHeads;
    const slots = [...Array.from({ length: Hkv }, () => 3), ...Array.from({ length: Hkv }, () => 2)];
    const rng = mulberry32(3);
    const entries: number[] = [];
    let at0 = 0;
    for (const r of slots) {
      const n = d() * r;
      entries.push(at0 + Math.floor(rng() * n), at0 + n + Math.floor(rng() * n));
      at0 += 2 * n;
    }
    expect(at0).toBe(factors.theta.length);
    const h = 1e-5;
    for (const i of entries) {
      const v = factors.theta[i];
      factors.theta[i] = v + h;
      const up = await loss();
      factors.theta[i] = v - h;
      const down = await loss();
      factors.theta[i] = v;
      const fd = (up - down) / (2 * h);
      expect(Math.abs(fd - analytic[i]) / Math.max(Math.abs(fd), 1e-3 * top)).toBeLessThan(1e-5);
    }
    // The product fed to the gradient is the compression's own: the sweep (cache x·A, rebuilt ·Bᵀ) agrees.
    const sweep = new LayerErrorSweep(setup.runner, setup.weights, setup.train, {
      rowsPerWindow: Number.POSITIVE_INFINITY,
    });
    const e = await sweep.error(factors.compression());
    expect(Math.abs(e * e - at.loss) / at.loss).toBeLessThan(1e-4);
  });
});

describe('finetuneLayer', () => {
  it.each([
    ['KQ-SVD', () => kqsvdAt(2, 2)],
    ['K/V PCA', () => fitKsvd(setup.capture, setup.runner.spec, 'pre-rope').at(2, 2)],
  ])('lowers the held-out loss of %s at rank 2, with finite factors', async (_, make) => {
    const start = make();
    const copy = factorsOf(start).map((f) => f.slice());
    const steps: number[] = [];
    const res = await finetuneLayer({
      ...base(start, { steps: 60 }),
      onStep: (p) => {
        expect(p.phase).toBe('finetune');
        steps.push(p.step);
      },
    });
    expect(res.heldout[0].step).toBe(0);
    // 2%: four orders beyond the float32 measurement's noise
    expect(res.best.loss).toBeLessThan(0.98 * res.heldout[0].loss);
    expect(res.best.step).toBeGreaterThan(0);
    expect(res.compression).not.toBe(start);
    expect(finite(res.compression)).toBe(true);
    expect(res.trainLoss.length).toBe(res.steps);
    expect(steps).toEqual(Array.from({ length: res.steps }, (_, i) => i + 1));
    expect(res.warning).toBeUndefined();
    // the best iterate is what it says on an independent measurement of the same windows
    const e = await new LayerErrorSweep(setup.runner, setup.weights, setup.held).error(res.compression);
    expect(Math.abs(e * e - res.best.loss) / res.best.loss).toBeLessThan(1e-4);
    // the start is not modified
    factorsOf(start).forEach((f, i) => expect(f).toEqual(copy[i]));
    expect(res.compression.kRank).toBe(2);
    expect(res.compression.keys!.every((p) => p.rank === 2 && p.a.length === 2 * d())).toBe(true);
  });

  it('stops an absurd learning rate as diverged and returns the start, finite', async () => {
    const start = kqsvdAt(2, 2);
    const res = await finetuneLayer(base(start, { steps: 40, lr: 1e6, checkEvery: 2, patience: 2 }));
    expect(res.stopped).toBe('diverged');
    expect(res.warning).toMatch(/diverged.*kept the fit it started from/);
    expect(res.compression).toBe(start);
    expect(res.best).toEqual({ step: 0, loss: res.heldout[0].loss });
    expect(res.steps).toBeLessThan(40);
    expect(finite(res.compression)).toBe(true);
  });

  it('stops at a non-finite held-out loss and keeps the best finite iterate', async () => {
    const sweep = new LayerErrorSweep(setup.runner, setup.weights, setup.held);
    let calls = 0;
    // finite for the start and the first two checks, then NaN
    const flaky: HeldoutErrors = {
      error: async (c) => (++calls > 3 ? Number.NaN : sweep.error(c)),
      errors: async (cs) => Promise.all(cs.map((c) => flaky.error(c))),
    };
    const res = await finetuneLayer({ ...base(kqsvdAt(2, 2), { steps: 60, checkEvery: 5 }), heldout: flaky });
    expect(res.stopped).toBe('diverged');
    expect(res.steps).toBe(15);
    expect(res.warning).toMatch(/held-out loss became NaN/);
    const finiteChecks = res.heldout.filter((h) => Number.isFinite(h.loss));
    expect(finiteChecks.length).toBe(3);
    expect(res.best.loss).toBe(Math.min(...finiteChecks.map((h) => h.loss)));
    expect(res.best.step).toBeGreaterThan(0);
    expect(finite(res.compression)).toBe(true);
  });

  /** A meter that reports the given held-out losses, one per measurement (the start first). */
  const scripted = (losses: number[]): HeldoutErrors => {
    let n = 0;
    const meter: HeldoutErrors = {
      error: async () => Math.sqrt(losses[Math.min(n++, losses.length - 1)]),
      errors: async (cs) => Promise.all(cs.map((c) => meter.error(c))),
    };
    return meter;
  };

  it('ends overfitting below the start quietly, and a climb above it as diverged, keeping the best', async () => {
    const settings = { steps: 50, checkEvery: 2, patience: 3 };
    const start = kqsvdAt(2, 2);
    const over = await finetuneLayer({
      ...base(start, settings),
      heldout: scripted([1, 0.5, 0.6, 0.7, 0.8, 0.9]),
    });
    expect(over.stopped).toBe('no-improvement');
    expect(over.warning).toBeUndefined();
    expect(over.steps).toBe(8);
    expect(over.best.step).toBe(2);
    expect(over.best.loss).toBeCloseTo(0.5, 12);
    expect(over.compression).not.toBe(start);
    const climb = await finetuneLayer({
      ...base(kqsvdAt(2, 2), settings),
      heldout: scripted([1, 0.9, 1.2, 1.3, 1.4]),
    });
    expect(climb.stopped).toBe('diverged');
    expect(climb.warning).toMatch(
      /above the start's 1\.000.*kept the iterate of step 2 \(held-out loss 0\.9000\)/,
    );
    expect(finite(climb.compression)).toBe(true);
  });

  it('stops after `patience` checks without improvement', async () => {
    // a learning rate so small the held-out loss cannot move past float32 noise
    const res = await finetuneLayer(
      base(kqsvdAt(2, 2), { steps: 100, lr: 1e-12, checkEvery: 1, patience: 3 }),
    );
    expect(res.stopped).toBe('no-improvement');
    expect(res.warning).toBeUndefined();
    // at most one check may win by rounding (the balanced factors are not the start's bit for bit)
    expect(res.steps).toBeLessThanOrEqual(4);
  });

  it('leaves a null side null and untrained', async () => {
    const c = kqsvdAt(2, 2);
    const res = await finetuneLayer(base({ ...c, values: null, vRank: d() }, { steps: 30 }));
    expect(res.compression.values).toBeNull();
    expect(res.best.loss).toBeLessThan(res.heldout[0].loss);
    const keysOnly = await finetuneLayer(base({ ...c, keys: null, kRank: d() }, { steps: 30 }));
    expect(keysOnly.compression.keys).toBeNull();
    expect(keysOnly.best.loss).toBeLessThan(keysOnly.heldout[0].loss);
  });

  it('does not train post-RoPE keys (nor values beside them), but trains values when keys are whole', async () => {
    const post = fitKqsvd(setup.capture, setup.runner.spec, 'post-rope').at(2, 2);
    const res = await finetuneLayer(base(post, { steps: 30 }));
    expect(res.stopped).toBe('not-trainable');
    expect(res.steps).toBe(0);
    expect(res.compression).toBe(post);
    expect(res.warning).toMatch(/after RoPE/);
    expect(res.best.loss).toBeGreaterThan(0);
    const values = await finetuneLayer(base({ ...post, keys: null, kRank: d() }, { steps: 30 }));
    expect(values.stopped).not.toBe('not-trainable');
    expect(values.best.loss).toBeLessThan(values.heldout[0].loss);
  });

  it('honours cancellation', async () => {
    const ctl = new AbortController();
    ctl.abort();
    await expect(
      finetuneLayer({ ...base(kqsvdAt(2, 2), { steps: 10 }), signal: ctl.signal }),
    ).rejects.toMatchObject({
      kind: 'cancelled',
    });
  });
});
