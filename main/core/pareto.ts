/**
 * A layer's Pareto front (methods.md §9.4): the points of its error-rank grid that no other point beats
 * on both cache size and error. The allocator solves over it and the wizard draws it, so both use this one
 * definition, ties included.
 */

/** A measured (or chosen) rank pair of one layer and its error. */
export interface RankPoint {
  /** Key rank per KV head. */
  kRank: number;
  /** Value rank per KV head. */
  vRank: number;
  error: number;
}

/**
 * kRank + vRank: a point's cost in "per-head rank" units. Every layer of a model shares H_kv and the
 * element size, so comparing and summing these integers is comparing bytes exactly, without floating point.
 */
export function rankSum(point: Pick<RankPoint, 'kRank' | 'vRank'>): number {
  return point.kRank + point.vRank;
}

/**
 * The non-dominated points, sorted by strictly increasing cost (kRank + vRank) with strictly decreasing
 * error. Of points with equal cost only the lowest error survives; of exact ties (same cost and error) the
 * one with the lower kRank, so the result never depends on the order of the input. A point that costs at
 * least as much as another and has at least its error can never be in an optimal allocation. The first
 * point is the cheapest; the last the most accurate.
 */
export function paretoFront<P extends RankPoint>(points: readonly P[]): P[] {
  // Best point per cost first (there are at most 2d distinct costs, against up to d² points), then one
  // sweep in cost order: linear in the grid size, which matters on fine grids (65 536 points per layer at
  // d = 256, step 1).
  const bestAtCost = new Map<number, P>();
  for (const p of points) {
    const cost = rankSum(p);
    const held = bestAtCost.get(cost);
    if (!held || p.error < held.error || (p.error === held.error && p.kRank < held.kRank))
      bestAtCost.set(cost, p);
  }
  const costs = [...bestAtCost.keys()].sort((a, b) => a - b);
  const front: P[] = [];
  for (const cost of costs) {
    const p = bestAtCost.get(cost)!;
    // survives only if it strictly beats the error of everything cheaper
    if (front.length === 0 || p.error < front[front.length - 1].error) front.push(p);
  }
  return front;
}
