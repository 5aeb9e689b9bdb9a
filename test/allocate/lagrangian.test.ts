import { describe, expect, it } from 'vitest';

import { allocateByBudget, allocateByMemory, paretoFront } from '../../main/core/allocate/index.ts';
import type { Allocation, LayerProfile } from '../../main/core/allocate/index.ts';
import { toCandidates } from '../../main/core/allocate/candidates.ts';
import { lowerHull } from '../../main/core/allocate/lagrangian.ts';
import type { Case, Rng } from './helpers.ts';
import { gridRanks, pick, randomCase, rngFor, sum, weightsOr1 } from './helpers.ts';

/**
 * Convex profiles: E = A · exp(−(kRank + vRank) / τ) per layer, so every point lies on one convex decreasing
 * curve of its cost and the lower hull is the whole Pareto front. With `fullAxes` every multiple of the grid
 * step is on both axes, so consecutive front points are one step apart ("unit steps").
 */
function convexCase(rng: Rng, fullAxes: boolean): Case {
  const headDim = pick(rng, [8, 16, 64]);
  const shape = { kvHeads: pick(rng, [1, 4, 8]), headDim, bytesPerElement: 2 };
  const grid = gridRanks(headDim);
  const axis = () => (fullAxes ? grid : grid.filter(() => rng() < 0.5).concat(headDim));
  const layers = 2 + Math.floor(rng() * 5);
  const profiles: LayerProfile[] = [];
  for (let layer = 0; layer < layers; layer++) {
    const a = 0.1 + rng();
    const tau = (0.2 + rng()) * headDim;
    const ks = [...new Set(axis())];
    const vs = [...new Set(axis())];
    const points = ks.flatMap((kRank) =>
      vs.map((vRank) => ({ kRank, vRank, error: a * Math.exp(-(kRank + vRank) / tau) })),
    );
    profiles.push({ layer, points });
  }
  const weights = rng() < 0.5 ? undefined : profiles.map(() => 0.5 + 2 * rng());
  return { profiles, shape, weights };
}

const ranks = (a: Allocation) => sum(a.layers.map((l) => l.kRank + l.vRank));
const fractionOf = (c: Case, rankTotal: number) => rankTotal / (c.profiles.length * 2 * c.shape.headDim);

describe('Lagrangian greedy', () => {
  it('on convex profiles with unit steps, equals the DP for both forms', () => {
    const rng = rngFor(21);
    const problems: string[] = [];
    for (let trial = 0; trial < 150; trial++) {
      const c = convexCase(rng, true);
      const opts = { weights: c.weights };
      const fraction = 1 - rng();
      const g = allocateByMemory(c.profiles, c.shape, fraction, { ...opts, method: 'lagrangian' });
      const d = allocateByMemory(c.profiles, c.shape, fraction, { ...opts, method: 'dp' });
      if (g.solver !== 'lagrangian' || g.feasible !== d.feasible) problems.push(`${trial}: memory flags`);
      if (Math.abs(g.weightedError - d.weightedError) > 1e-12) {
        problems.push(`${trial}: memory ${g.weightedError} vs DP ${d.weightedError}`);
      }
      const budget = d.weightedError * (0.5 + rng()) + 1e-9;
      const gb = allocateByBudget(c.profiles, c.shape, budget, { ...opts, method: 'lagrangian' });
      const db = allocateByBudget(c.profiles, c.shape, budget, { ...opts, method: 'dp' });
      if (gb.feasible !== db.feasible) problems.push(`${trial}: budget flags`);
      if (ranks(gb) !== ranks(db)) problems.push(`${trial}: budget ${ranks(gb)} ranks vs DP ${ranks(db)}`);
    }
    expect(problems).toEqual([]);
  });

  it('on convex profiles with uneven steps, is optimal for the size it stops at', () => {
    const rng = rngFor(22);
    const problems: string[] = [];
    for (let trial = 0; trial < 150; trial++) {
      const c = convexCase(rng, false);
      const opts = { weights: c.weights };
      const g = allocateByMemory(c.profiles, c.shape, 1 - rng(), { ...opts, method: 'lagrangian' });
      if (!g.feasible) continue;
      // no allocation of at most the greedy's size has less weighted error
      const d = allocateByMemory(c.profiles, c.shape, fractionOf(c, ranks(g)), { ...opts, method: 'dp' });
      if (Math.abs(g.weightedError - d.weightedError) > 1e-12) {
        problems.push(`${trial}: memory ${g.weightedError} vs DP ${d.weightedError} at the same size`);
      }
      const gb = allocateByBudget(c.profiles, c.shape, g.weightedError * (0.5 + rng()) + 1e-9, {
        ...opts,
        method: 'lagrangian',
      });
      if (!gb.feasible) continue;
      const db = allocateByMemory(c.profiles, c.shape, fractionOf(c, ranks(gb)), { ...opts, method: 'dp' });
      if (Math.abs(gb.weightedError - db.weightedError) > 1e-12)
        problems.push(`${trial}: budget stop not optimal`);
    }
    expect(problems).toEqual([]);
  });

  it('never violates the target on arbitrary profiles, flags the same infeasible cases, never beats the DP', () => {
    const rng = rngFor(23);
    const problems: string[] = [];
    for (let trial = 0; trial < 300; trial++) {
      const c = randomCase(rng);
      const opts = { weights: c.weights };
      const fraction = 1 - rng();
      const g = allocateByMemory(c.profiles, c.shape, fraction, { ...opts, method: 'lagrangian' });
      const d = allocateByMemory(c.profiles, c.shape, fraction, { ...opts, method: 'dp' });
      if (g.feasible !== d.feasible) problems.push(`${trial}: memory feasibility differs`);
      if (g.feasible && g.totalBytesPerToken > fraction * g.originalBytesPerToken * (1 + 1e-9)) {
        problems.push(`${trial}: memory target violated`);
      }
      if (g.feasible && g.weightedError < d.weightedError - 1e-12) problems.push(`${trial}: beat the DP`);
      const budget = 1e-3 + rng() * 0.5;
      const gb = allocateByBudget(c.profiles, c.shape, budget, { ...opts, method: 'lagrangian' });
      const db = allocateByBudget(c.profiles, c.shape, budget, { ...opts, method: 'dp' });
      if (gb.feasible !== db.feasible) problems.push(`${trial}: budget feasibility differs`);
      if (gb.feasible && !(gb.weightedError <= budget)) problems.push(`${trial}: budget violated`);
      if (gb.feasible && ranks(gb) < ranks(db)) problems.push(`${trial}: cheaper than the DP`);
      // only lower-hull vertices are ever chosen
      for (const a of [g, gb]) {
        a.layers.forEach((l, i) => {
          const cands = toCandidates(paretoFront(c.profiles[i].points), weightsOr1(c)[i]);
          const hull = lowerHull(cands).map((j) => cands[j].point);
          if (!hull.some((p) => p.kRank === l.kRank && p.vRank === l.vRank)) {
            problems.push(`${trial}: layer ${l.layer} off the hull`);
          }
        });
      }
    }
    expect(problems).toEqual([]);
  });

  it('lowerHull keeps the convex vertices (collinear ones included) and drops the points above', () => {
    const at = (cost: number, weighted: number) => ({
      point: { kRank: cost, vRank: 0, error: weighted },
      cost,
      weighted,
    });
    // (6, 5) lies above the chord (4, 6)–(8, 2); (8, 2) is on the line from (4, 6) to (10, 0) and stays
    expect(lowerHull([at(2, 10), at(4, 6), at(6, 5), at(8, 2), at(10, 0)])).toEqual([0, 1, 3, 4]);
    expect(lowerHull([at(2, 1)])).toEqual([0]);
  });

  it('is used automatically once the DP table would exceed the cell limit', () => {
    const rng = rngFor(24);
    const c = randomCase(rng, { mode: 'monotone' });
    expect(allocateByMemory(c.profiles, c.shape, 0.6, { weights: c.weights }).solver).toBe('dp');
    expect(allocateByMemory(c.profiles, c.shape, 0.6, { weights: c.weights, dpCellLimit: 3 }).solver).toBe(
      'lagrangian',
    );
    expect(allocateByBudget(c.profiles, c.shape, 0.1, { weights: c.weights, dpWorkLimit: 3 }).solver).toBe(
      'lagrangian',
    );

    // A fine grid (ranks 1..1024 in steps of 1, cost unit 1) on 200 layers: ~7e7 cells for the budget form.
    const headDim = 1024;
    const shape = { kvHeads: 8, headDim, bytesPerElement: 2 };
    const profiles: LayerProfile[] = Array.from({ length: 200 }, (_, layer) => {
      const a = 0.05 + rng() * 0.5;
      const points = [{ kRank: headDim, vRank: headDim, error: 0 }];
      for (let i = 0; i < 20; i++) {
        const kRank = 1 + Math.floor(rng() * headDim);
        const vRank = 1 + Math.floor(rng() * headDim);
        if (points.some((p) => p.kRank === kRank && p.vRank === vRank)) continue;
        points.push({ kRank, vRank, error: a * (1 - kRank / headDim) + a * (1 - vRank / headDim) * rng() });
      }
      return { layer, points };
    });
    const t0 = performance.now();
    const b = allocateByBudget(profiles, shape, 0.1);
    expect(b.solver).toBe('lagrangian');
    expect(b.feasible).toBe(true);
    expect(b.weightedError).toBeLessThanOrEqual(0.1);
    const m = allocateByMemory(profiles, shape, 0.95);
    expect(m.solver).toBe('lagrangian');
    expect(m.totalBytesPerToken).toBeLessThanOrEqual(0.95 * m.originalBytesPerToken);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
