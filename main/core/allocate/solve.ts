/**
 * Picks the solver (exact DP, or the Lagrangian greedy above a table-size limit) and handles infeasible
 * targets, for both forms. Infeasibility is decided here, once, from the two extreme choices (cheapest and
 * most accurate), so both solvers see only feasible problems and report the same thing when one is not.
 */
import { badInput } from '../errors.ts';
import type { LayerCandidates, Picks } from './candidates.ts';
import { cheapestPicks, costSum, mostAccuratePicks, weightedSum, withinBudget } from './candidates.ts';
import type { DpSize } from './knapsack.ts';
import { dpByBudget, dpByMemory, dpSize } from './knapsack.ts';
import { greedyByBudget, greedyByMemory } from './lagrangian.ts';
import type { AllocateOptions, CacheShape } from './types.ts';

/** Above this many DP cells (layers × cost units) 'auto' uses the greedy: ~50 MB of back-pointers. */
export const DEFAULT_DP_CELL_LIMIT = 5e7;
/**
 * Above this many DP inner steps (Σ front sizes × cost units) 'auto' uses the greedy: about 2 s. Fine grids
 * hit this first: 128 layers at d = 256, step 1 is only 8e6 cells but 4e9 steps (half a minute), where
 * the greedy takes well under a second and, on a grid that fine, is off the optimum by a fraction of a step.
 */
export const DEFAULT_DP_WORK_LIMIT = 3e8;

export interface Solution {
  picks: Picks;
  solver: 'dp' | 'lagrangian';
  feasible: boolean;
  reason?: string;
}

/** What messages need to speak in bytes, and whether some layers were pinned by hand. */
export interface SolveContext {
  shape: CacheShape;
  pinned: number;
}

function chooseSolver(opts: AllocateOptions, size: () => DpSize): 'dp' | 'lagrangian' {
  const method = opts.method ?? 'auto';
  if (method !== 'auto' && method !== 'dp' && method !== 'lagrangian') {
    throw badInput(`allocation method must be 'auto', 'dp' or 'lagrangian', got ${String(method)}`);
  }
  const cellLimit = opts.dpCellLimit ?? DEFAULT_DP_CELL_LIMIT;
  const workLimit = opts.dpWorkLimit ?? DEFAULT_DP_WORK_LIMIT;
  for (const [name, limit] of [
    ['dpCellLimit', cellLimit],
    ['dpWorkLimit', workLimit],
  ] as const) {
    if (typeof limit !== 'number' || !(limit > 0))
      throw badInput(`${name} must be a number > 0, got ${limit}`);
  }
  if (method !== 'auto') return method;
  const { cells, work } = size();
  return cells > cellLimit || work > workLimit ? 'lagrangian' : 'dp';
}

function bytesOf(rankSumTotal: number, shape: CacheShape): number {
  return rankSumTotal * shape.kvHeads * shape.bytesPerElement;
}

const pinnedNote = (ctx: SolveContext) =>
  ctx.pinned > 0 ? ` with ${ctx.pinned} layer(s) pinned by hand` : '';

/** Minimise Σ w E subject to Σ (kRank + vRank) ≤ capRankSum. */
export function solveByMemory(
  layers: readonly LayerCandidates[],
  capRankSum: number,
  fraction: number,
  ctx: SolveContext,
  opts: AllocateOptions = {},
): Solution {
  const solver = chooseSolver(opts, () => dpSize(layers, capRankSum));
  const cheapest = cheapestPicks(layers);
  const minCost = costSum(layers, cheapest);
  if (minCost > capRankSum) {
    const full = layers.length * 2 * ctx.shape.headDim;
    const targetBytes = fraction * bytesOf(full, ctx.shape);
    return {
      picks: cheapest,
      solver,
      feasible: false,
      reason:
        `keeping ${fraction} of the KV cache is out of reach${pinnedNote(ctx)}: the smallest allocation on the grid needs ` +
        `${bytesOf(minCost, ctx.shape)} B/token (${(minCost / full).toFixed(4)} of the original), more than ` +
        `the target of ${targetBytes} B/token; returned that smallest allocation`,
    };
  }
  const picks = solver === 'dp' ? dpByMemory(layers, capRankSum) : greedyByMemory(layers, capRankSum);
  if (!picks) throw new Error('allocate: memory target checked feasible but the solver found no choice');
  return { picks, solver, feasible: true };
}

/** Minimise Σ (kRank + vRank) subject to Σ w E / Σ w ≤ budget. */
export function solveByBudget(
  layers: readonly LayerCandidates[],
  totalWeight: number,
  budget: number,
  ctx: SolveContext,
  opts: AllocateOptions = {},
): Solution {
  const solver = chooseSolver(opts, () => dpSize(layers));
  const accurate = mostAccuratePicks(layers);
  const floor = weightedSum(layers, accurate);
  if (!withinBudget(floor, totalWeight, budget)) {
    return {
      picks: accurate,
      solver,
      feasible: false,
      reason:
        `an error budget of ${budget} is out of reach${pinnedNote(ctx)}: the most accurate allocation on the grid ` +
        `(usually full rank) has weighted mean error ${floor / totalWeight}; returned that allocation`,
    };
  }
  const picks =
    solver === 'dp' ? dpByBudget(layers, totalWeight, budget) : greedyByBudget(layers, totalWeight, budget);
  if (!picks) throw new Error('allocate: error budget checked feasible but the solver found no choice');
  return { picks, solver, feasible: true };
}
