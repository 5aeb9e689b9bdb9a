import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../main/model/prng.ts';
import { ModelRunner, layerWeightFeeds } from '../../main/runtime/runner.ts';
import { compressionInputs } from '../../main/runtime/projection.ts';
import { LayerGradient } from '../../main/runtime/layer-grad.ts';
import { secondLayerBatches } from './grad-check.ts';
import { planeSelection, thinSwap } from '../../main/runtime/thin-rope.ts';
import type { FactorPair, LayerCompression } from '../../main/core/kv.ts';
import type { ModelSpec } from '../../main/model/types.ts';
import { referenceLayer, type Vec } from '../reference/forward.ts';
import { syntheticModels, tinyLlama } from '../helpers/recipes.ts';
import { maxRelError } from '../helpers/numeric.ts';

const { engine, models } = syntheticModels({ llama: tinyLlama(5), llama2: tinyLlama(9, { numLayers: 1 }) });

/** x·F for a row vector x and a d×r factor. */
function times(x: Vec, f: Float64Array, r: number): Float64Array {
  const out = new Float64Array(r);
  for (let k = 0; k < r; k++) for (let i = 0; i < x.length; i++) out[k] += x[i] * f[i * r + k];
  return out;
}

/**
 * The thin space's rotation written out plane by plane (independent of thin-rope.ts): thin plane j turns
 * (x_j, x_{j+h}) by t·θ^(−2p/d) for its original plane p; an odd r's last coordinate stays.
 */
function rotateThin(x: Float64Array, t: number, planes: number[], theta: number, d: number): Float64Array {
  const h = planes.length;
  const out = Float64Array.from(x);
  planes.forEach((p, j) => {
    const angle = t * Math.pow(theta, (-2 * p) / d);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    out[j] = x[j] * c - x[j + h] * s;
    out[j + h] = x[j + h] * c + x[j] * s;
  });
  return out;
}

function randomPairs(heads: number, d: number, r: number, seed: number): FactorPair[] {
  const rng = mulberry32(seed);
  const m = () => Float64Array.from({ length: d * r }, () => rng() - 0.5);
  return Array.from({ length: heads }, () => ({ a: m(), b: m(), rank: r }));
}

async function layerRun(spec: ModelSpec, name: string, c: LayerCompression | null, ids: Int32Array) {
  const model = models[name];
  const runner = new ModelRunner(engine(), model);
  const x = await runner.embed(ids, 1, ids.length);
  const w = await model.loadLayer(0);
  const { variant, feeds } = compressionInputs(spec, c, ids.length);
  const y = (await runner.layerVariant(variant, { ...layerWeightFeeds(spec, w), ...feeds }, x, 1, ids.length))
    .y.data as Float32Array;
  const D = spec.hiddenSize;
  const rows = Array.from({ length: ids.length }, (_, t) =>
    Float64Array.from(x.subarray(t * D, (t + 1) * D)),
  );
  return { y, rows, w };
}

const idsOf = (spec: ModelSpec, T: number) =>
  Int32Array.from({ length: T }, (_, t) => (t * 37 + 11) % spec.vocabSize);

describe('thin-space RoPE (R3) in the layer graph', () => {
  it.each([
    [5, [3, 0]],
    [4, [1, 2]],
    [1, []],
  ])(
    'rank %i, planes %j: equals the reference layer with queries and keys rotated in the thin space',
    async (r, planes) => {
      const spec = models.llama.spec;
      const d = spec.headDim;
      const theta = spec.block.rope!.theta;
      const G = spec.numHeads / spec.numKvHeads;
      const keys = randomPairs(spec.numKvHeads, d, r, 17 + r);
      const c: LayerCompression = {
        keySpace: 'thin-rope',
        kRank: r,
        vRank: d,
        keys,
        values: null,
        ropePlanes: planes,
      };
      const ids = idsOf(spec, 14);
      const { y, rows, w } = await layerRun(spec, 'llama', c, ids);
      const want = referenceLayer(spec, w, rows, {
        key: ({ pre }, g, t) => rotateThin(times(pre, keys[g].a, r), t, planes, theta, d),
        query: ({ pre }, h, t) => rotateThin(times(pre, keys[Math.floor(h / G)].b, r), t, planes, theta, d),
      });
      expect(
        maxRelError(
          y,
          want.flatMap((v) => [...v]),
        ),
      ).toBeLessThan(1e-4);
    },
  );

  it('the selection of every plane reproduces the original layer; a subset equals the planes kept', async () => {
    const spec = models.llama.spec;
    const d = spec.headDim;
    const ids = idsOf(spec, 12);
    const all = [2, 0, 3, 1];
    const select = (r: number, planes: number[]) =>
      Array.from({ length: spec.numKvHeads }, () => {
        const s = planeSelection(d, r, planes);
        return { a: s, b: s, rank: r };
      });
    const thin = (r: number, planes: number[]): LayerCompression => ({
      keySpace: 'thin-rope',
      kRank: r,
      vRank: d,
      keys: select(r, planes),
      values: null,
      ropePlanes: planes,
    });
    const original = await layerRun(spec, 'llama', null, ids);
    expect(maxRelError((await layerRun(spec, 'llama', thin(d, all), ids)).y, original.y)).toBeLessThan(1e-5);
    // two planes kept: the same as projecting pre-RoPE keys on their coordinates (RoPE leaves the planes)
    const planes = [3, 1];
    const proj = Array.from({ length: spec.numKvHeads }, () => {
      const m = new Float64Array(d * d);
      for (let i = 0; i < d; i++) m[i * d + i] = planes.includes(i % (d / 2)) ? 1 : 0;
      return { a: m, b: m, rank: d };
    });
    const pre: LayerCompression = { keySpace: 'pre-rope', kRank: d, vRank: d, keys: proj, values: null };
    const kept = await layerRun(spec, 'llama', thin(4, planes), ids);
    const projected = await layerRun(spec, 'llama', pre, ids);
    expect(maxRelError(kept.y, projected.y)).toBeLessThan(1e-5);
    expect(maxRelError(kept.y, original.y)).toBeGreaterThan(1e-3);
  });

  it('swap pairs thin plane halves and leaves an odd last dimension in place', () => {
    expect(thinSwap(5)).toEqual([2, 3, 0, 1, 4]);
    expect(thinSwap(4)).toEqual([2, 3, 0, 1]);
    expect(thinSwap(1)).toEqual([0]);
  });
});

describe('thin-space gradient (R3 fine-tuning)', () => {
  const setup = async () => {
    const model = models.llama;
    const runner = new ModelRunner(engine(), model);
    return { spec: model.spec, runner, ...(await secondLayerBatches(model, runner)) };
  };
  const rng = mulberry32(41);
  const noise = (n: number, s: number) => Float64Array.from({ length: n }, () => s * (rng() - 0.5));

  it('∂ℒ/∂A, ∂ℒ/∂B and ∂ℒ/∂M_V agree with float64 central differences', async () => {
    const { spec, runner, weights, batches } = await setup();
    const d = spec.headDim;
    const Hkv = spec.numKvHeads;
    const r = 5;
    const planes = [3, 0];
    const keys = Array.from({ length: Hkv }, () => {
      const s = planeSelection(d, r, planes, 1);
      return { a: s.map((v) => v + 0.3 * (rng() - 0.5)), b: s.map((v) => v + 0.3 * (rng() - 0.5)), rank: r };
    });
    const mV = Array.from({ length: Hkv }, () =>
      noise(d * d, 0.6).map((v, i) => v + (i % (d + 1) === 0 ? 1 : 0)),
    );
    const at = (ks: FactorPair[]): LayerCompression => ({
      keySpace: 'thin-rope',
      kRank: r,
      vRank: d,
      keys: ks,
      values: null,
      ropePlanes: planes,
    });
    const exact = new LayerGradient(runner, weights, batches, { dtype: 'float64', keys: 'thin' });
    const g = await exact.evaluateThin(at(keys), mV);
    const h = 1e-5;
    const dots = (a: Float64Array[], b: Float64Array[]) =>
      a.reduce((acc, m, k) => acc + m.reduce((s, v, i) => s + v * b[k][i], 0), 0);
    const scale = Math.sqrt(dots(g.gradA, g.gradA) + dots(g.gradB, g.gradB) + dots(g.gradV, g.gradV));
    for (const side of ['a', 'b', 'v'] as const) {
      for (let n = 0; n < 3; n++) {
        const dir = Array.from({ length: Hkv }, () => noise(side === 'v' ? d * d : d * r, 2));
        const loss = async (s: number) => {
          const ks = keys.map((p, k) => ({
            ...p,
            a: side === 'a' ? p.a.map((v, i) => v + s * dir[k][i]) : p.a,
            b: side === 'b' ? p.b.map((v, i) => v + s * dir[k][i]) : p.b,
          }));
          const vs = side === 'v' ? mV.map((m, k) => m.map((v, i) => v + s * dir[k][i])) : mV;
          return (await exact.evaluateThin(at(ks), vs)).loss;
        };
        const fd = ((await loss(h)) - (await loss(-h))) / (2 * h);
        const an = dots(side === 'a' ? g.gradA : side === 'b' ? g.gradB : g.gradV, dir);
        const dirNorm = Math.sqrt(dots(dir, dir));
        expect(
          Math.abs(fd - an) / Math.max(Math.abs(fd), scale * dirNorm * 1e-2),
          `${side} ${n}`,
        ).toBeLessThan(1e-5);
      }
    }
    // the float32 training graph and the loss-only graph agree with the float64 one
    const f32 = await new LayerGradient(runner, weights, batches, { keys: 'thin' }).evaluateThin(
      at(keys),
      mV,
    );
    const lossOnly = await new LayerGradient(runner, weights, batches, {
      keys: 'thin',
      grad: false,
    }).evaluateThin(at(keys), mV);
    expect(Math.abs(f32.loss - g.loss) / g.loss).toBeLessThan(1e-4);
    expect(Math.abs(lossOnly.loss - g.loss) / g.loss).toBeLessThan(1e-4);
    expect(lossOnly.gradA).toEqual([]);
  });
});
