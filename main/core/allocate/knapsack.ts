/**
 * Exact multiple-choice knapsack by dynamic programming over cost (methods.md §9.4 (a) and (b)).
 *
 * Costs are integer rank sums kRank + vRank; dividing by their gcd g (the grid step, ×2 when both axes share
 * it) gives small integer "cost units" in which every total is representable, so a table indexed by total
 * units is exact. We always tabulate over cost, never over error: errors are reals, and discretising them
 * would make the optimum approximate.
 *
 * best[u] = the least Σ w_ℓ E_ℓ over choices costing exactly u units. Both forms read their answer off the
 * same table:
 *   memory target: argmin_{u ≤ capacity} best[u];
 *   error budget:  the smallest u with best[u] within budget (cheaper totals all fail it, since best[u]
 *                  is the least error reachable at u).
 * Time O(L · |front| · U), memory L · U bytes for the back-pointers.
 */
import type { LayerCandidates, Picks } from './candidates.ts';
import { withinBudget } from './candidates.ts';

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** The cost unit: gcd of every candidate cost of every layer. */
export function costUnit(layers: readonly LayerCandidates[]): number {
  let g = 0;
  for (const cands of layers) for (const c of cands) g = gcd(g, c.cost);
  return g;
}

/** Σ over layers of the most expensive candidate, in cost units. */
function maxTotalUnits(layers: readonly LayerCandidates[], unit: number): number {
  let sum = 0;
  for (const cands of layers) sum += cands[cands.length - 1].cost / unit;
  return sum;
}

/** What the DP would cost for a memory target of `capRankSum` (Infinity: no cap, the budget form). */
export interface DpSize {
  /** Table cells, layers × (cost units + 1): one back-pointer byte (or two) each. */
  cells: number;
  /** Inner-loop steps, Σ_ℓ |front_ℓ| × (cost units + 1): the running time, at a few ns each. */
  work: number;
}

export function dpSize(layers: readonly LayerCandidates[], capRankSum = Infinity): DpSize {
  const unit = costUnit(layers);
  const width = Math.max(Math.min(maxTotalUnits(layers, unit), Math.floor(capRankSum / unit)), 0) + 1;
  let candidates = 0;
  for (const cands of layers) candidates += cands.length;
  return { cells: layers.length * width, work: candidates * width };
}

interface Table {
  unit: number;
  maxUnits: number;
  /** best[u] for the full set of layers; Infinity where no choice costs exactly u. */
  best: Float64Array;
  /** choice[l · (maxUnits + 1) + u]: candidate index layer l takes in the best choice of layers 0..l at u. */
  choice: Uint8Array | Uint16Array;
}

function fillTable(layers: readonly LayerCandidates[], unit: number, maxUnits: number): Table {
  const width = maxUnits + 1;
  const widest = Math.max(...layers.map((c) => c.length));
  const choice =
    widest <= 256 ? new Uint8Array(layers.length * width) : new Uint16Array(layers.length * width);
  let prev = new Float64Array(width).fill(Infinity);
  prev[0] = 0; // adding from 0 in layer order keeps sums identical to candidates.weightedSum
  let cur = new Float64Array(width);
  layers.forEach((cands, l) => {
    const units = cands.map((c) => c.cost / unit);
    const weighted = cands.map((c) => c.weighted);
    cur.fill(Infinity);
    const row = l * width;
    for (let u = 0; u < width; u++) {
      for (let p = 0; p < cands.length; p++) {
        const from = u - units[p];
        if (from < 0) break; // candidates are sorted by cost: the rest are dearer still
        const v = prev[from] + weighted[p];
        // strict: on exact ties the cheaper candidate (earlier in Pareto order) wins, deterministically
        if (v < cur[u]) {
          cur[u] = v;
          choice[row + u] = p;
        }
      }
    }
    [prev, cur] = [cur, prev];
  });
  return { unit, maxUnits, best: prev, choice };
}

function reconstruct(layers: readonly LayerCandidates[], table: Table, total: number): Picks {
  const width = table.maxUnits + 1;
  const picks: Picks = new Array<number>(layers.length);
  let u = total;
  for (let l = layers.length - 1; l >= 0; l--) {
    const p = table.choice[l * width + u];
    picks[l] = p;
    u -= layers[l][p].cost / table.unit;
  }
  return picks;
}

/**
 * Memory-target form: the choice minimising Σ w_ℓ E_ℓ with Σ cost ≤ capRankSum, or null when even the
 * cheapest choice does not fit. Among equal-error optima the cheapest is returned.
 */
export function dpByMemory(layers: readonly LayerCandidates[], capRankSum: number): Picks | null {
  const unit = costUnit(layers);
  const maxUnits = Math.min(maxTotalUnits(layers, unit), Math.floor(capRankSum / unit));
  if (maxUnits < 0) return null;
  const table = fillTable(layers, unit, maxUnits);
  let bestU = -1;
  for (let u = 0; u <= maxUnits; u++) {
    if (table.best[u] < (bestU < 0 ? Infinity : table.best[bestU])) bestU = u;
  }
  return bestU < 0 ? null : reconstruct(layers, table, bestU);
}

/**
 * Error-budget form: the cheapest choice whose weighted mean error Σ w E / Σ w is within `budget`, with the
 * least error among the cheapest; null when no choice meets the budget.
 */
export function dpByBudget(
  layers: readonly LayerCandidates[],
  totalWeight: number,
  budget: number,
): Picks | null {
  const unit = costUnit(layers);
  const maxUnits = maxTotalUnits(layers, unit);
  const table = fillTable(layers, unit, maxUnits);
  for (let u = 0; u <= maxUnits; u++) {
    if (withinBudget(table.best[u], totalWeight, budget)) return reconstruct(layers, table, u);
  }
  return null;
}
