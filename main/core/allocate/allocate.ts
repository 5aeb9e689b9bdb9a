/**
 * The two allocator entry points (ARCHITECTURE.md §6): a memory target (--kv-fraction) or an error budget
 * (--budget). Both validate, Pareto-prune every layer, solve, and summarise.
 */
import { layerFullBytes, rankSumCapacity } from './bytes.ts';
import type { LayerCandidates, Picks } from './candidates.ts';
import { toCandidates, totalWeightOf } from './candidates.ts';
import { paretoFront } from './pareto.ts';
import type { Solution } from './solve.ts';
import { solveByBudget, solveByMemory } from './solve.ts';
import type { LayerChoice } from './summary.ts';
import { summarize } from './summary.ts';
import type { Allocation, AllocateOptions, AllocationTarget, CacheShape, LayerProfile } from './types.ts';
import { validateBudget, validateFraction, validateProfiles, validateShape } from './validate.ts';
import { resolveWeights } from './weights.ts';

/** Validated inputs and each layer's Pareto candidates, in profile order. */
interface Prepared {
  weights: number[];
  candidates: LayerCandidates[];
}

function prepare(
  profiles: readonly LayerProfile[],
  shape: CacheShape,
  weights: readonly number[] | undefined,
): Prepared {
  validateShape(shape);
  validateProfiles(profiles, shape.headDim);
  const w = resolveWeights(weights, profiles.length);
  return { weights: w, candidates: profiles.map((p, i) => toCandidates(paretoFront(p.points), w[i])) };
}

/** The chosen point of every layer, flagged pinned where `pinned` says so (by default none is). */
export function choicesOf(
  profiles: readonly LayerProfile[],
  candidates: readonly LayerCandidates[],
  picks: Picks,
  pinned: (layer: number) => boolean = () => false,
): LayerChoice[] {
  return profiles.map((p, i) => ({
    layer: p.layer,
    point: candidates[i][picks[i]].point,
    pinned: pinned(p.layer),
  }));
}

function finish(
  profiles: readonly LayerProfile[],
  shape: CacheShape,
  prepared: Prepared,
  target: AllocationTarget,
  solution: Solution,
): Allocation {
  const choices = choicesOf(profiles, prepared.candidates, solution.picks);
  return summarize(choices, shape, prepared.weights, target, solution.solver, solution);
}

/**
 * Memory target: the allocation with the least weighted error Σ w_ℓ E_ℓ whose cache is at most `fraction`
 * of the original. Throws badInput unless 0 < fraction ≤ 1. When even the smallest ranks on the grid do not
 * fit, returns that smallest allocation with feasible = false and a reason.
 */
export function allocateByMemory(
  profiles: readonly LayerProfile[],
  shape: CacheShape,
  fraction: number,
  opts: AllocateOptions = {},
): Allocation {
  validateFraction(fraction);
  const prepared = prepare(profiles, shape, opts.weights);
  const cap = rankSumCapacity(fraction, profiles.length, shape.headDim);
  const target: AllocationTarget = {
    kind: 'memory',
    fraction,
    // what was asked; the check itself compares whole rank sums against `cap` (see rankSumCapacity)
    bytesPerToken: fraction * profiles.length * layerFullBytes(shape),
  };
  const solution = solveByMemory(prepared.candidates, cap, fraction, { shape, pinned: 0 }, opts);
  return finish(profiles, shape, prepared, target, solution);
}

/**
 * Error budget: the smallest cache whose weighted mean error Σ w_ℓ E_ℓ / Σ w_ℓ is at most `budget`. Throws
 * badInput unless the budget is finite and > 0. When even the most accurate grid points (usually full rank)
 * miss it, returns that allocation with feasible = false and a reason.
 */
export function allocateByBudget(
  profiles: readonly LayerProfile[],
  shape: CacheShape,
  budget: number,
  opts: AllocateOptions = {},
): Allocation {
  validateBudget(budget);
  const prepared = prepare(profiles, shape, opts.weights);
  const totalWeight = totalWeightOf(prepared.weights);
  const solution = solveByBudget(prepared.candidates, totalWeight, budget, { shape, pinned: 0 }, opts);
  return finish(profiles, shape, prepared, { kind: 'budget', budget }, solution);
}
