/**
 * Lagrangian greedy for grids too large for the DP (methods.md §9.4, "greedy/Lagrangian").
 *
 * For a multiplier λ ≥ 0 each layer independently takes argmin_p w_ℓ e_p + λ c_p, which is always a vertex of
 * the lower convex hull of its (cost, w·e) points. As λ grows the layer steps down its hull, one segment at a
 * time, exactly when λ passes that segment's slope. So sweeping λ is the same as visiting all layers' hull
 * segments in slope order; we do that directly instead of bisecting on a real λ, which needs no tolerance and
 * lets several layers that share a slope move one at a time rather than all at once.
 *
 * Every stop of the sweep is optimal for its own cost (no allocation that costs no more has less weighted
 * error), so on convex profiles the greedy matches the DP whenever the target lands on a stop; otherwise it
 * can be off by at most one hull step, which is small exactly when the grid is fine, the case it is used for.
 * Points inside the hull are never picked. The constraint is never violated: we stop only once it holds.
 */
import type { LayerCandidates, Picks } from './candidates.ts';
import { costSum, weightedSum, withinBudget } from './candidates.ts';

/**
 * Indices (into `cands`, which is in Pareto order) of the lower convex hull of the points (cost, weighted),
 * cheapest first. Collinear points are kept: they are legitimate intermediate stops.
 */
export function lowerHull(cands: LayerCandidates): number[] {
  const hull: number[] = [];
  for (let i = 0; i < cands.length; i++) {
    const c = cands[i];
    while (hull.length >= 2) {
      const a = cands[hull[hull.length - 2]];
      const b = cands[hull[hull.length - 1]];
      // b strictly above the chord a→c: not a vertex of the lower hull
      const above =
        (b.weighted - a.weighted) * (c.cost - a.cost) > (c.weighted - a.weighted) * (b.cost - a.cost);
      if (!above) break;
      hull.pop();
    }
    hull.push(i);
  }
  return hull;
}

/**
 * |slope| of the hull segment between vertices pos − 1 and pos: the weighted error added per unit of cost
 * saved stepping down it, equally the error removed per unit added stepping up. Positive on a Pareto front.
 */
function segmentSlope(cands: LayerCandidates, hull: number[], pos: number): number {
  const hi = cands[hull[pos]];
  const lo = cands[hull[pos - 1]];
  return (lo.weighted - hi.weighted) / (hi.cost - lo.cost);
}

/**
 * Memory-target form: start every layer at its most accurate vertex and keep taking the cheapest step down
 * (least error added per unit saved; ties to the lower layer index) until Σ cost ≤ capRankSum. Null when even
 * the cheapest vertices do not fit.
 */
export function greedyByMemory(layers: readonly LayerCandidates[], capRankSum: number): Picks | null {
  const hulls = layers.map(lowerHull);
  const pos = hulls.map((h) => h.length - 1);
  const picks = () => hulls.map((h, l) => h[pos[l]]);
  let total = costSum(layers, picks());
  while (total > capRankSum) {
    let best = -1;
    let bestSlope = Infinity;
    for (let l = 0; l < layers.length; l++) {
      if (pos[l] === 0) continue;
      const s = segmentSlope(layers[l], hulls[l], pos[l]);
      if (best < 0 || s < bestSlope) [best, bestSlope] = [l, s];
    }
    if (best < 0) return null;
    total -= layers[best][hulls[best][pos[best]]].cost - layers[best][hulls[best][pos[best] - 1]].cost;
    pos[best]--;
  }
  return picks();
}

/**
 * Error-budget form: start every layer at its cheapest vertex and keep taking the best step up (most error
 * removed per unit of cost added; ties to the lower layer index) until the weighted mean error is within the
 * budget. The test re-sums in layer order each step, so it is the same test the result is reported with.
 * Null when even the most accurate vertices miss the budget.
 */
export function greedyByBudget(
  layers: readonly LayerCandidates[],
  totalWeight: number,
  budget: number,
): Picks | null {
  const hulls = layers.map(lowerHull);
  const pos = hulls.map(() => 0);
  const picks = () => hulls.map((h, l) => h[pos[l]]);
  while (!withinBudget(weightedSum(layers, picks()), totalWeight, budget)) {
    let best = -1;
    let bestSlope = -Infinity;
    for (let l = 0; l < layers.length; l++) {
      if (pos[l] === hulls[l].length - 1) continue;
      const s = segmentSlope(layers[l], hulls[l], pos[l] + 1);
      if (best < 0 || s > bestSlope) [best, bestSlope] = [l, s];
    }
    if (best < 0) return null;
    pos[best]++;
  }
  return picks();
}
