/**
 * StiefAttention's gradient graph on recipes with the features the block builder added: its float64
 * gradients against its own finite differences, its loss against the float64 reference block with keys
 * and values projected, under a sliding window shorter than the sequence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../main/model/prng.ts';
import type { BlockRecipe, LayerWeights, ModelSpec } from '../../main/model/types.ts';
import type { HeldoutBatch } from '../../main/runtime/capture.ts';
import { Engine, f32 } from '../../main/runtime/engine.ts';
import { LAYER_INPUTS } from '../../main/runtime/graphs/decoder-layer.ts';
import { LayerGradient } from '../../main/runtime/layer-grad.ts';
import { layerWeightFeeds, ModelRunner } from '../../main/runtime/runner.ts';
import { referenceBlock } from './block-reference.ts';
import { fdError, genericProjections, gradRelError, probes, stiefelProjections } from './grad-check.ts';
import { defaultInvFreq, randomModel, recipe, rowsOf, sourceOf, specFor } from './recipe-models.ts';

const CASES: [string, BlockRecipe][] = [
  [
    'post-norms, attention softcap, q/k norms, GeGLU (tanh), (1 + w) gains, scaled RoPE, window 5',
    recipe({
      norm: { kind: 'rms', eps: 1e-6, offset: 1 },
      postNorms: true,
      qkNorm: true,
      mlp: { gated: true, act: 'gelu_tanh' },
      rope: {
        theta: 1e4,
        invFreq: defaultInvFreq(1e4, 8).map((f, i) => (i >= 2 ? f / 4 : f)),
        attentionFactor: 1.1,
        scaling: 'yarn',
      },
      queryScale: 0.3,
      attnSoftcap: 1.5,
      slidingWindow: [5, null],
    }),
  ],
  [
    'LayerNorm post-norms, plain exact GELU (float64 erf from primitives), all biases, no RoPE, window 5',
    recipe({
      norm: { kind: 'layer', eps: 1e-5, offset: 0 },
      postNorms: true,
      mlp: { gated: false, act: 'gelu' },
      bias: { qkv: true, o: true, mlp: true },
      rope: null,
      attnSoftcap: 2,
      slidingWindow: [5, 5],
    }),
  ],
];

interface Setup {
  spec: ModelSpec;
  runner: ModelRunner;
  weights: LayerWeights;
  batches: HeldoutBatch[];
}
const setups = new Map<string, Setup>();
let engine: Engine;

beforeAll(async () => {
  engine = await Engine.create({ device: 'cpu' });
  for (const [n, [name, block]] of CASES.entries()) {
    const m = randomModel(specFor(block), 200 + n);
    const runner = new ModelRunner(engine, sourceOf(m));
    // Layer 0, whose window (5) is shorter than both batches' sequences.
    const weights = m.layers[0];
    const feeds = layerWeightFeeds(m.spec, weights);
    const batches: HeldoutBatch[] = [];
    for (const [B, T] of [
      [2, 16],
      [1, 9],
    ]) {
      const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37 + B * 11 + 5) % m.spec.vocabSize);
      const x = await runner.embed(ids, B, T);
      batches.push({ B, T, x, y: await runner.layer(feeds, x, B, T, 0), layer: 0 });
    }
    setups.set(name, { spec: m.spec, runner, weights, batches });
  }
});
afterAll(async () => {
  await engine.release();
});

/** ‖Ŷ − Y‖² / ‖Y‖² of the float64 reference block with k → k·M_K before RoPE and v → v·M_V. */
function referenceLoss(s: Setup, mK: Float64Array[], mV: Float64Array[]): number {
  const { spec } = s;
  const D = spec.hiddenSize;
  const d = spec.headDim;
  const times = (x: Float64Array, m: Float64Array) => {
    const out = new Float64Array(d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) out[j] += x[i] * m[i * d + j];
    return out;
  };
  let err = 0;
  let ref = 0;
  for (const b of s.batches) {
    for (let n = 0; n < b.B; n++) {
      const out = referenceBlock(spec, s.weights, rowsOf(b.x, n, b.T, D), spec.block.slidingWindow[0], {
        key: (k, g) => times(k, mK[g]),
        value: (v, g) => times(v, mV[g]),
      });
      out.forEach((row, t) =>
        row.forEach((v, i) => {
          const yv = b.y[(n * b.T + t) * D + i];
          err += (v - yv) ** 2;
          ref += yv ** 2;
        }),
      );
    }
  }
  return err / ref;
}

const report: string[] = [];
afterAll(() => console.log(`layer-grad-features measurements:\n${report.join('\n')}`));

describe.each(CASES.map(([name]) => name))('%s', (name) => {
  it('float64 gradients match finite differences; float32 follows them', async () => {
    const s = setups.get(name)!;
    const { numKvHeads: Hkv, headDim: d } = s.spec;
    const rng = mulberry32(name.length);
    const mK = genericProjections(Hkv, d, rng);
    const mV = stiefelProjections(Hkv, d, 3, rng);
    const exact = new LayerGradient(s.runner, s.weights, s.batches, { dtype: 'float64' });
    const g64 = await exact.evaluate(mK, mV);
    const g32 = await new LayerGradient(s.runner, s.weights, s.batches).evaluate(mK, mV);
    expect(g64.loss).toBeGreaterThan(1e-4);
    const list = probes(s.spec, rng);
    const e64 = await fdError(exact, g64, mK, mV, list);
    const e32 = await fdError(exact, g32, mK, mV, list);
    const full32 = gradRelError(g32, g64);
    report.push(
      `${name}: loss ${g64.loss.toExponential(3)}; FD rel err float64 ${e64.toExponential(2)}, ` +
        `float32 ${e32.toExponential(2)}; ‖g32 − g64‖/‖g64‖ ${full32.toExponential(2)}`,
    );
    expect(e64).toBeLessThan(1e-6);
    expect(e32).toBeLessThan(1e-2);
    expect(full32).toBeLessThan(1e-3);
  });

  it('the loss equals the float64 reference block and the error variant graph', async () => {
    const s = setups.get(name)!;
    const { spec } = s;
    const rng = mulberry32(99);
    const mK = stiefelProjections(spec.numKvHeads, spec.headDim, 3, rng);
    const mV = stiefelProjections(spec.numKvHeads, spec.headDim, 5, rng);
    const dims = [spec.numKvHeads, spec.headDim, spec.headDim];
    const stack = (ms: Float64Array[]) => f32(Float32Array.from(ms.flatMap((m) => Array.from(m))), dims);
    let err = 0;
    let ref = 0;
    for (const b of s.batches) {
      const out = await s.runner.layerVariant(
        { keyProjection: 'pre', valueProjection: true, error: true },
        {
          ...layerWeightFeeds(spec, s.weights),
          [LAYER_INPUTS.kProj]: stack(mK),
          [LAYER_INPUTS.vProj]: stack(mV),
          [LAYER_INPUTS.yRef]: f32(b.y, [b.B, b.T, spec.hiddenSize]),
        },
        b.x,
        b.B,
        b.T,
        b.layer,
      );
      err += (out.sq_err.data as Float32Array)[0];
      ref += (out.sq_ref.data as Float32Array)[0];
    }
    const want = referenceLoss(s, mK, mV);
    const g32 = await new LayerGradient(s.runner, s.weights, s.batches).evaluate(mK, mV);
    const g64 = await new LayerGradient(s.runner, s.weights, s.batches, { dtype: 'float64' }).evaluate(
      mK,
      mV,
    );
    report.push(
      `${name} loss: reference ${want.toExponential(6)}, float64 graph rel diff ` +
        `${(Math.abs(g64.loss - want) / want).toExponential(2)}, float32 ` +
        `${(Math.abs(g32.loss - want) / want).toExponential(2)}, error variant ` +
        `${(Math.abs(err / ref - g32.loss) / g32.loss).toExponential(2)}`,
    );
    expect(Math.abs(g64.loss - want) / want).toBeLessThan(1e-9);
    expect(Math.abs(g32.loss - want) / want).toBeLessThan(1e-4);
    expect(Math.abs(err / ref - g32.loss) / g32.loss).toBeLessThan(1e-5);
  });

  it('identity projections give zero loss and zero gradient', async () => {
    const s = setups.get(name)!;
    const id = await new LayerGradient(s.runner, s.weights, s.batches, { dtype: 'float64' }).evaluate(
      null,
      null,
    );
    expect(id.loss).toBeLessThan(1e-12);
    for (const m of [...id.gradK, ...id.gradV]) for (const v of m) expect(Math.abs(v)).toBeLessThan(1e-5);
  });
});
