/**
 * Per-layer Pareto pruning (methods.md §9.4): a point that costs at least as much as another and has at
 * least its error can never be in an optimal allocation, so the solvers only ever see the front. This also
 * absorbs non-monotone profiles (a non-nested basis, measurement noise, §11.8).
 */
import { rankSum } from './bytes.ts';
import type { ProfilePoint } from './types.ts';

/**
 * The non-dominated points of one layer's grid, by cost (kRank + vRank, i.e. bytes) and error: sorted by
 * strictly increasing cost with strictly decreasing error. Of points with equal cost only the lowest error
 * survives; of exact ties (same cost and error) the one with the lower kRank, so the result never depends on
 * the order of the input. The first point is the cheapest; the last the most accurate.
 */
export function paretoFront(points: readonly ProfilePoint[]): ProfilePoint[] {
  // Best point per cost first (there are at most 2d distinct costs, against up to d² points), then one
  // sweep in cost order: linear in the grid size, which matters on fine grids (65 536 points per layer at
  // d = 256, step 1).
  const bestAtCost = new Map<number, ProfilePoint>();
  for (const p of points) {
    const cost = rankSum(p);
    const held = bestAtCost.get(cost);
    if (!held || p.error < held.error || (p.error === held.error && p.kRank < held.kRank))
      bestAtCost.set(cost, p);
  }
  const costs = [...bestAtCost.keys()].sort((a, b) => a - b);
  const front: ProfilePoint[] = [];
  for (const cost of costs) {
    const p = bestAtCost.get(cost)!;
    // survives only if it strictly beats the error of everything cheaper
    if (front.length === 0 || p.error < front[front.length - 1].error) front.push(p);
  }
  return front;
}
