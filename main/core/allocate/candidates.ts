/**
 * The solvers' view of a problem: per layer a list of candidate points in Pareto order (cost strictly
 * increasing, error strictly decreasing), each with its integer cost and weighted error precomputed. A layer
 * pinned by hand is simply a layer with one candidate, so the solvers need no special case for overrides.
 */
import { rankSum } from './bytes.ts';
import type { ProfilePoint } from './types.ts';

export interface Candidate {
  point: ProfilePoint;
  /** kRank + vRank: bytes / (H_kv · b), an exact integer. */
  cost: number;
  /** w_ℓ · E. */
  weighted: number;
}

/** One layer's candidates, cheapest first. */
export type LayerCandidates = readonly Candidate[];

export function toCandidates(points: readonly ProfilePoint[], weight: number): Candidate[] {
  return points.map((point) => ({ point, cost: rankSum(point), weighted: weight * point.error }));
}

/** Picked candidate index per layer. */
export type Picks = number[];

/**
 * Σ w_ℓ E_ℓ of a choice, summed in layer order from 0. The DP accumulates in exactly this order, so the value
 * it compares against a budget is bit-for-bit the one reported and re-checked here.
 */
export function weightedSum(layers: readonly LayerCandidates[], picks: Picks): number {
  let sum = 0;
  for (let l = 0; l < layers.length; l++) sum += layers[l][picks[l]].weighted;
  return sum;
}

export function costSum(layers: readonly LayerCandidates[], picks: Picks): number {
  let sum = 0;
  for (let l = 0; l < layers.length; l++) sum += layers[l][picks[l]].cost;
  return sum;
}

/**
 * The error-budget test, in one place: weighted MEAN Σ w E / Σ w ≤ E. We bound the mean rather than the raw
 * sum so one budget number means the same thing on a 5-layer and an 80-layer model (a raw-sum budget of 0.05
 * would be generous on the first and nearly unreachable on the second), and so rescaling all weights changes
 * nothing.
 */
export function withinBudget(sum: number, totalWeight: number, budget: number): boolean {
  return sum / totalWeight <= budget;
}

/** The cheapest choice (first candidate everywhere): the least memory any allocation can use. */
export function cheapestPicks(layers: readonly LayerCandidates[]): Picks {
  return layers.map(() => 0);
}

/** The most accurate choice (last candidate everywhere): usually full rank, the least error reachable. */
export function mostAccuratePicks(layers: readonly LayerCandidates[]): Picks {
  return layers.map((c) => c.length - 1);
}

/** Σ w_ℓ, summed in layer order (summary.ts sums the same way, so budget tests and reports agree). */
export function totalWeightOf(weights: readonly number[]): number {
  let sum = 0;
  for (const w of weights) sum += w;
  return sum;
}
