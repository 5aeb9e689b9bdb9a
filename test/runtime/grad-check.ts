/**
 * Checks of the layer gradient graph shared by its test files: the projections it is evaluated at, probe
 * directions, central differences of the float64 loss against the analytic directional derivative, and
 * the relative gap between two gradients.
 */
import { randomOrthonormal } from '../../main/model/prng.ts';
import type { ModelSpec } from '../../main/model/types.ts';
import type { LayerGradient, LayerGradResult } from '../../main/runtime/layer-grad.ts';
import type { ModelHandle } from '../../main/model/model.ts';
import type { HeldoutBatch } from '../../main/runtime/capture.ts';
import { layerWeightFeeds, type ModelRunner } from '../../main/runtime/runner.ts';

/**
 * Layer 1 of a model with two batches of different shapes ([2, 7] and [1, 10]) at its input (layer 0's
 * outputs) and output: a gradient must combine them as one.
 */
export async function secondLayerBatches(model: ModelHandle, runner: ModelRunner) {
  const spec = model.spec;
  const w0 = layerWeightFeeds(spec, await model.loadLayer(0));
  const weights = await model.loadLayer(1);
  const w1 = layerWeightFeeds(spec, weights);
  const batches: HeldoutBatch[] = [];
  for (const [B, T] of [
    [2, 7],
    [1, 10],
  ]) {
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37 + B * 11 + 5) % spec.vocabSize);
    const x = await runner.layer(w0, await runner.embed(ids, B, T), B, T);
    batches.push({ B, T, x, y: await runner.layer(w1, x, B, T) });
  }
  return { weights, batches };
}

/** Per-head M = P·Pᵀ for random orthonormal P (d×r, column-major from randomOrthonormal). */
export function stiefelProjections(heads: number, d: number, r: number, rng: () => number): Float64Array[] {
  return Array.from({ length: heads }, () => {
    const p = randomOrthonormal(d, r, rng);
    const m = new Float64Array(d * d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) for (let k = 0; k < r; k++) m[i * d + j] += p[k * d + i] * p[k * d + j];
    return m;
  });
}

/** A generic non-symmetric M = I + noise per head. */
export function genericProjections(heads: number, d: number, rng: () => number): Float64Array[] {
  return Array.from({ length: heads }, () =>
    Float64Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? 1 : 0) + 0.4 * (rng() - 0.5)),
  );
}

export function randomDirection(heads: number, d: number, rng: () => number): Float64Array[] {
  return Array.from({ length: heads }, () => Float64Array.from({ length: d * d }, () => rng() - 0.5));
}

export const axpy = (ms: Float64Array[], dir: Float64Array[], s: number) =>
  ms.map((m, h) => m.map((v, i) => v + s * dir[h][i]));

export const dot = (a: Float64Array[], b: Float64Array[]) =>
  a.reduce((acc, m, h) => acc + m.reduce((s, v, i) => s + v * b[h][i], 0), 0);

/** A unit matrix E_(h, i) in one head's entry i. */
export function unit(heads: number, d: number, h: number, i: number): Float64Array[] {
  return Array.from({ length: heads }, (_, k) => {
    const m = new Float64Array(d * d);
    if (k === h) m[i] = 1;
    return m;
  });
}

export interface Probe {
  /** Which side the direction perturbs. */
  side: 'K' | 'V';
  dir: Float64Array[];
  label: string;
}

export function probes(spec: ModelSpec, rng: () => number): Probe[] {
  const Hkv = spec.numKvHeads;
  const d = spec.headDim;
  const out: Probe[] = [];
  for (const side of ['K', 'V'] as const) {
    out.push({ side, dir: randomDirection(Hkv, d, rng), label: `${side} random direction` });
    for (let n = 0; n < 3; n++) {
      const h = Math.floor(rng() * Hkv);
      const i = Math.floor(rng() * d * d);
      out.push({ side, dir: unit(Hkv, d, h, i), label: `${side}[${h}][${i}]` });
    }
  }
  return out;
}

/**
 * Central differences of the float64 graph's own loss along each probe, against the analytic directional
 * derivative ⟨∇ℒ, dir⟩ of `analytic`. Returns the worst error relative to the gradient's scale.
 */
export async function fdError(
  exact: LayerGradient,
  analytic: LayerGradResult,
  mK: Float64Array[],
  mV: Float64Array[],
  list: Probe[],
  step = 1e-5,
): Promise<number> {
  let worst = 0;
  // Scale: the norm of the whole gradient, so near-zero single entries are not judged by their own size.
  const scale = Math.sqrt(dot(analytic.gradK, analytic.gradK) + dot(analytic.gradV, analytic.gradV));
  for (const p of list) {
    const at = async (s: number) =>
      p.side === 'K'
        ? (await exact.evaluate(axpy(mK, p.dir, s), mV)).loss
        : (await exact.evaluate(mK, axpy(mV, p.dir, s))).loss;
    const fd = ((await at(step)) - (await at(-step))) / (2 * step);
    const an = dot(p.side === 'K' ? analytic.gradK : analytic.gradV, p.dir);
    const dirNorm = Math.sqrt(dot(p.dir, p.dir));
    const rel = Math.abs(fd - an) / Math.max(Math.abs(fd), scale * dirNorm * 1e-2);
    worst = Math.max(worst, rel);
  }
  return worst;
}

/** ‖a − b‖ / ‖b‖ over all heads of both sides. */
export function gradRelError(a: LayerGradResult, b: LayerGradResult): number {
  let num = 0;
  let den = 0;
  for (const side of ['gradK', 'gradV'] as const) {
    a[side].forEach((m, h) =>
      m.forEach((v, i) => {
        num += (v - b[side][h][i]) ** 2;
        den += b[side][h][i] ** 2;
      }),
    );
  }
  return Math.sqrt(num / den);
}
