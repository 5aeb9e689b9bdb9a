/**
 * Shared fixtures for the allocator tests: seeded random profiles and a brute force over every combination
 * of grid points (dominated ones included), written independently of the solvers so it can judge them.
 */
import { expect } from 'vitest';

import { mulberry32, randomInt } from '../../main/model/prng.ts';

export { randomInt };
import type { CacheShape, LayerProfile, ProfilePoint } from '../../main/core/allocate/types.ts';

export type Rng = () => number;

export const rngFor = (seed: number): Rng => mulberry32(seed);

export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[randomInt(rng, xs.length)];
}

/** `n` distinct values of `xs`, ascending. */
function subset(rng: Rng, xs: readonly number[], n: number): number[] {
  const pool = [...xs];
  const out: number[] = [];
  while (out.length < n && pool.length > 0) out.push(pool.splice(randomInt(rng, pool.length), 1)[0]);
  return out.sort((a, b) => a - b);
}

/** Per-head rank grid: multiples of max(1, d/8) up to d, as the profiler measures. */
export function gridRanks(headDim: number): number[] {
  const step = Math.max(1, headDim / 8);
  return Array.from({ length: Math.floor(headDim / step) }, (_, i) => (i + 1) * step);
}

export type ErrorMode = 'monotone' | 'arbitrary' | 'ties';

/** Errors for one layer over kAxis × vAxis. */
function layerErrors(rng: Rng, kAxis: number[], vAxis: number[], headDim: number, mode: ErrorMode) {
  // monotone: E = f(k) + g(v) with f, g non-increasing and 0 at full rank, like a nested basis
  const decreasing = (axis: number[]) => {
    const vals = axis.map(() => rng() * 0.5).sort((a, b) => b - a);
    return axis.map((r, i) => (r === headDim ? 0 : vals[i]));
  };
  const f = decreasing(kAxis);
  const g = decreasing(vAxis);
  const points: ProfilePoint[] = [];
  kAxis.forEach((kRank, i) =>
    vAxis.forEach((vRank, j) => {
      const error =
        mode === 'monotone' ? f[i] + g[j] : mode === 'ties' ? randomInt(rng, 5) / 4 : rng() * rng();
      points.push({ kRank, vRank, error });
    }),
  );
  return points;
}

export interface Case {
  profiles: LayerProfile[];
  shape: CacheShape;
  weights: number[] | undefined;
}

/** 2–5 layers, 2–4 ranks per axis, a random shape, errors of a random kind, random or default weights. */
export function randomCase(rng: Rng, opts: { maxLayers?: number; mode?: ErrorMode } = {}): Case {
  const headDim = pick(rng, [4, 8, 16, 64, 128]);
  const shape: CacheShape = {
    kvHeads: pick(rng, [1, 2, 4, 8]),
    headDim,
    bytesPerElement: pick(rng, [1, 2, 4]),
  };
  const layers = 2 + randomInt(rng, (opts.maxLayers ?? 5) - 1);
  const grid = gridRanks(headDim);
  const profiles: LayerProfile[] = [];
  for (let l = 0; l < layers; l++) {
    const kAxis = subset(rng, grid, 2 + randomInt(rng, 3));
    const vAxis = subset(rng, grid, 2 + randomInt(rng, 3));
    const mode = opts.mode ?? pick(rng, ['monotone', 'arbitrary', 'ties'] as const);
    profiles.push({ layer: l, points: layerErrors(rng, kAxis, vAxis, headDim, mode) });
  }
  const wMode = randomInt(rng, 3);
  const weights =
    wMode === 0 ? undefined : Array.from({ length: layers }, () => (wMode === 1 ? 1 : 0.25 + 3 * rng()));
  return { profiles, shape, weights };
}

export const rankSumOf = (p: { kRank: number; vRank: number }) => p.kRank + p.vRank;

export interface Combo {
  points: ProfilePoint[];
  /** Σ kRank + vRank */
  cost: number;
  /** Σ w E, summed in layer order from 0 */
  weighted: number;
}

/** Visits every combination of one point per layer (depth-first, sums accumulated in layer order). */
export function forEachCombo(
  profiles: readonly LayerProfile[],
  weights: readonly number[],
  visit: (cost: number, weighted: number, points: readonly ProfilePoint[]) => void,
): void {
  const chosen: ProfilePoint[] = [];
  const walk = (l: number, cost: number, weighted: number) => {
    if (l === profiles.length) return visit(cost, weighted, chosen);
    for (const p of profiles[l].points) {
      chosen[l] = p;
      walk(l + 1, cost + rankSumOf(p), weighted + weights[l] * p.error);
    }
  };
  walk(0, 0, 0);
}

export const weightsOr1 = (c: Case) => c.weights ?? c.profiles.map(() => 1);
export const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** Least Σ w E among combinations with Σ rank sums ≤ cap (null: none fits). */
export function bruteMemory(c: Case, capRankSum: number): Combo | null {
  let best: Combo | null = null;
  forEachCombo(c.profiles, weightsOr1(c), (cost, weighted, points) => {
    if (cost <= capRankSum && (!best || weighted < best.weighted))
      best = { cost, weighted, points: [...points] };
  });
  return best;
}

/** Least Σ rank sums among combinations with Σ w E / Σ w ≤ budget (null: none meets it). */
export function bruteBudget(c: Case, budget: number): Combo | null {
  const w = weightsOr1(c);
  const totalWeight = sum(w);
  let best: Combo | null = null;
  forEachCombo(c.profiles, w, (cost, weighted, points) => {
    if (weighted / totalWeight <= budget && (!best || cost < best.cost)) {
      best = { cost, weighted, points: [...points] };
    }
  });
  return best;
}

/** Largest total rank sum within fraction F of the original, with the tolerance the allocator documents. */
export function capacityOf(c: Case, fraction: number): number {
  const exact = fraction * c.profiles.length * 2 * c.shape.headDim;
  return Math.floor(exact * (1 + 1e-9));
}

/** Relative closeness for sums of the same terms that may be added in a different order. */
export function expectClose(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(expected)));
}

export { badInputFrom } from '../helpers/errors.ts';

/** Fisher–Yates, on a copy. */
export function shuffle<T>(rng: Rng, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
