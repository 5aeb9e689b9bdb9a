/**
 * The end-to-end objective (issue 12): a layer's output error does not add up to perplexity, so each layer
 * is probed instead. Its compression alone, at a few points of its profile, moves the model's mean
 * next-token NLL by a measured ΔNLL; a map from layer error to ΔNLL, fitted per layer through those probes,
 * turns every profile point into a predicted effect, and the same exact knapsack then minimises the summed
 * effect. Summed ΔNLL is what perplexity multiplies by: ppl = ppl₀ · exp(Σ ΔNLL), so additivity is the
 * only assumption, and the report shows it against the measured perplexity.
 */
import { badInput } from '../errors.ts';
import { paretoFront, rankSum, type RankPoint } from '../pareto.ts';
import type { Allocation, LayerProfile } from './types.ts';

/** One probe: the layer compressed at (kRank, vRank), every other layer original. */
export interface EffectProbe {
  kRank: number;
  vRank: number;
  /** The layer's held-out output error at that pair (its profile's). */
  error: number;
  /** Measured mean NLL increase of the whole model, nats per token (can be slightly negative: noise). */
  effect: number;
}

export interface LayerEffect {
  layer: number;
  probes: EffectProbe[];
}

/** Where a layer is probed: these shares of its full cache (kRank + vRank over 2d). */
export const PROBE_SHARES = [1 / 8, 1 / 4, 1 / 2, 3 / 4] as const;

/**
 * The pairs to probe on one layer: for each share, the most accurate Pareto point that costs at most that
 * share of the layer's full cache (the cheapest point when none does), each pair once. These are where
 * allocations at the usual targets land, so the map is measured, not extrapolated, where it is used.
 */
export function probePairs(points: readonly RankPoint[], headDim: number): RankPoint[] {
  const front = paretoFront(points).filter((p) => p.error > 0);
  if (front.length === 0) return [];
  const picked = new Map<string, RankPoint>();
  for (const share of PROBE_SHARES) {
    const cap = share * 2 * headDim;
    const within = front.filter((p) => rankSum(p) <= cap);
    const p = within.length > 0 ? within[within.length - 1] : front[0];
    picked.set(`${p.kRank},${p.vRank}`, p);
  }
  return [...picked.values()].sort((a, b) => a.error - b.error);
}

/**
 * The effect predicted at a layer error: through the probes, made non-decreasing in the error (a larger
 * error never predicts a smaller effect; pooled where measurements disagree) and floored at 0.
 * Between 0 and the first probe the effect grows as the error squared, as a small perturbation of the
 * output moves the NLL (the first-order term averages out at the model's optimum); between probes it is
 * linear; beyond the last it continues the last segment's slope.
 */
export function predictEffect(probes: readonly EffectProbe[], error: number): number {
  if (!(error > 0)) return 0;
  const pts = monotone(probes);
  if (pts.length === 0) return 0;
  const first = pts[0];
  if (error <= first.error) return first.effect * (error / first.error) ** 2;
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1];
    const b = pts[i];
    if (error <= b.error) return a.effect + ((b.effect - a.effect) * (error - a.error)) / (b.error - a.error);
  }
  const last = pts[pts.length - 1];
  const prev = pts.length > 1 ? pts[pts.length - 2] : { error: 0, effect: 0 };
  const slope = (last.effect - prev.effect) / (last.error - prev.error);
  return last.effect + slope * (error - last.error);
}

/** Probes sorted by error, with effects floored at 0 and made non-decreasing by pooling adjacent violators. */
function monotone(probes: readonly EffectProbe[]): { error: number; effect: number }[] {
  const sorted = probes.filter((p) => p.error > 0).sort((a, b) => a.error - b.error);
  // pool-adjacent-violators: blocks of equal fitted value, each the mean of its members
  const blocks: { sum: number; n: number }[] = [];
  for (const p of sorted) {
    blocks.push({ sum: Math.max(0, p.effect), n: 1 });
    while (blocks.length > 1) {
      const b = blocks[blocks.length - 1];
      const a = blocks[blocks.length - 2];
      if (a.sum / a.n <= b.sum / b.n) break;
      blocks.splice(blocks.length - 2, 2, { sum: a.sum + b.sum, n: a.n + b.n });
    }
  }
  const fitted = blocks.flatMap((b) => new Array<number>(b.n).fill(b.sum / b.n));
  return sorted.map((p, i) => ({ error: p.error, effect: fitted[i] }));
}

/** The profiles with every error replaced by the layer's predicted effect: what the knapsack minimises. */
export function effectProfiles(
  profiles: readonly LayerProfile[],
  effects: readonly LayerEffect[],
): LayerProfile[] {
  const byLayer = new Map(effects.map((e) => [e.layer, e.probes]));
  return profiles.map((p) => {
    const probes = byLayer.get(p.layer);
    if (!probes) throw badInput(`end-to-end objective: layer ${p.layer} has no measured effects`);
    return { layer: p.layer, points: p.points.map((q) => ({ ...q, error: predictEffect(probes, q.error) })) };
  });
}

/**
 * The mean-per-layer effect budget that a perplexity increase allows: ppl/ppl₀ = exp(Σ ΔNLL) ≤ 1 + p, and
 * the budget allocator bounds the mean over `layers`.
 */
export function effectBudget(maxPplIncrease: number, layers: number): number {
  if (!(maxPplIncrease > 0 && Number.isFinite(maxPplIncrease))) {
    throw badInput(`the perplexity increase must be a positive number, got ${maxPplIncrease}`);
  }
  return Math.log1p(maxPplIncrease) / layers;
}

/** Perplexity predicted from the original's and the layers' summed effect. */
export function predictedPerplexity(original: number, totalEffect: number): number {
  return original * Math.exp(totalEffect);
}

/**
 * An allocation solved over effect profiles, told in layer errors again (each chosen pair's profile error,
 * the weighted and plain means recomputed), with the summed predicted effect beside them.
 */
export function inLayerErrors(allocation: Allocation, profiles: readonly LayerProfile[]): Allocation {
  const predictedNllIncrease = allocation.layers.reduce((sum, l) => sum + l.error, 0);
  const layers = allocation.layers.map((l, i) => {
    const p = profiles[i].points.find((q) => q.kRank === l.kRank && q.vRank === l.vRank);
    if (!p)
      throw badInput(`end-to-end objective: layer ${l.layer} has no profile point at ${l.kRank}/${l.vRank}`);
    return { ...l, error: p.error };
  });
  const w = allocation.weights;
  const weightSum = w.reduce((a, b) => a + b, 0);
  return {
    ...allocation,
    layers,
    weightedError: layers.reduce((s, l, i) => s + w[i] * l.error, 0) / weightSum,
    meanError: layers.reduce((s, l) => s + l.error, 0) / layers.length,
    predictedNllIncrease,
  };
}
