import { describe, expect, it } from 'vitest';

import { allocateByBudget, allocateByMemory, paretoFront } from '../../main/core/allocate/index.ts';
import type { Allocation, LayerProfile } from '../../main/core/allocate/index.ts';
import type { Case } from './helpers.ts';
import {
  bruteBudget,
  bruteMemory,
  capacityOf,
  forEachCombo,
  randomCase,
  rngFor,
  shuffle,
  sum,
  weightsOr1,
} from './helpers.ts';

const TRIALS = 250;

/** Every chosen point is on its layer's grid with the profile's error, and on the layer's Pareto front. */
function choiceProblems(c: Case, a: Allocation): string[] {
  const out: string[] = [];
  a.layers.forEach((l, i) => {
    const profile = c.profiles[i];
    if (l.layer !== profile.layer) out.push(`layer ${i} is ${l.layer}, not ${profile.layer}`);
    const onGrid = profile.points.find((p) => p.kRank === l.kRank && p.vRank === l.vRank);
    if (!onGrid || onGrid.error !== l.error)
      out.push(`layer ${l.layer}: (${l.kRank}, ${l.vRank}) off the grid`);
    if (!paretoFront(profile.points).some((p) => p.kRank === l.kRank && p.vRank === l.vRank)) {
      out.push(`layer ${l.layer}: (${l.kRank}, ${l.vRank}) is dominated`);
    }
    if (l.bytesPerToken !== (l.kRank + l.vRank) * c.shape.kvHeads * c.shape.bytesPerElement) {
      out.push(`layer ${l.layer}: bytes`);
    }
  });
  if (a.totalBytesPerToken !== sum(a.layers.map((l) => l.bytesPerToken))) out.push('total bytes');
  return out;
}

const rankTotal = (a: Allocation) => sum(a.layers.map((l) => l.kRank + l.vRank));

/** Extremes over all combinations: the least and greatest weighted mean error, and a random combination's. */
function errorRange(c: Case, rngPick: number) {
  const w = weightsOr1(c);
  const totalWeight = sum(w);
  let min = Infinity;
  let max = -Infinity;
  let n = 0;
  let picked = 0;
  let count = 1;
  for (const p of c.profiles) count *= p.points.length;
  const target = Math.floor(rngPick * count);
  forEachCombo(c.profiles, w, (_cost, weighted) => {
    min = Math.min(min, weighted / totalWeight);
    max = Math.max(max, weighted / totalWeight);
    if (n++ === target) picked = weighted / totalWeight;
  });
  return { min, max, picked };
}

describe('memory target (--kv-fraction): exact DP against brute force', () => {
  it('matches the brute-force optimum, meets the target, picks Pareto points', () => {
    const rng = rngFor(1);
    const problems: string[] = [];
    let infeasible = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const c = randomCase(rng);
      const fraction = 1 - rng(); // (0, 1]
      const a = allocateByMemory(c.profiles, c.shape, fraction, { weights: c.weights, method: 'dp' });
      const cap = capacityOf(c, fraction);
      const brute = bruteMemory(c, cap);
      const where = `trial ${trial} (F = ${fraction})`;
      problems.push(...choiceProblems(c, a).map((p) => `${where}: ${p}`));
      if (a.solver !== 'dp') problems.push(`${where}: solver ${a.solver}`);
      if (!brute) {
        infeasible++;
        // the smallest allocation, flagged
        const minCost = sum(c.profiles.map((p) => Math.min(...p.points.map((q) => q.kRank + q.vRank))));
        if (a.feasible || rankTotal(a) !== minCost || !/out of reach/.test(a.reason ?? '')) {
          problems.push(`${where}: infeasible case mishandled`);
        }
        continue;
      }
      const totalWeight = sum(weightsOr1(c));
      if (!a.feasible || a.reason !== undefined) problems.push(`${where}: flagged infeasible`);
      if (rankTotal(a) > cap) problems.push(`${where}: over capacity`);
      if (a.totalBytesPerToken > fraction * a.originalBytesPerToken * (1 + 1e-9)) {
        problems.push(`${where}: over the target in bytes`);
      }
      const want = brute.weighted / totalWeight;
      if (Math.abs(a.weightedError - want) > 1e-12 * Math.max(1, want)) {
        problems.push(`${where}: weighted error ${a.weightedError}, brute force ${want}`);
      }
    }
    expect(problems).toEqual([]);
    expect(infeasible).toBeGreaterThan(5); // the random fractions do reach both regimes
    expect(infeasible).toBeLessThan(TRIALS - 50);
  });

  it('a hand-checked case: spends the memory where the weighted error drops most', () => {
    const shape = { kvHeads: 1, headDim: 8, bytesPerElement: 2 };
    const grid = (e44: number, e48: number, e84: number) => [
      { kRank: 4, vRank: 4, error: e44 },
      { kRank: 4, vRank: 8, error: e48 },
      { kRank: 8, vRank: 4, error: e84 },
      { kRank: 8, vRank: 8, error: 0 },
    ];
    const profiles: LayerProfile[] = [
      { layer: 0, points: grid(0.9, 0.2, 0.5) },
      { layer: 1, points: grid(0.35, 0.25, 0.1) },
    ];
    const ranks = (a: Allocation) => a.layers.map((l) => [l.kRank, l.vRank]);
    // original 2 layers · 16 ranks = 32. F = 0.75 → 24 ranks: 12 + 12 (0.3) beats 16 + 8 (0.35), 8 + 16 (0.9)
    const a = allocateByMemory(profiles, shape, 0.75);
    expect(ranks(a)).toEqual([
      [4, 8],
      [8, 4],
    ]);
    expect(a.weightedError).toBeCloseTo(0.15, 15);
    expect(a.meanError).toBeCloseTo(0.15, 15);
    expect(a.totalBytesPerToken).toBe(24 * 2);
    expect(a.originalBytesPerToken).toBe(64);
    expect(a.kvFraction).toBe(0.75);
    expect(a.target).toEqual({ kind: 'memory', fraction: 0.75, bytesPerToken: 48 });
    // F = 0.625 → 20 ranks: 12 + 8 (0.55) beats 8 + 12 (1.0)
    expect(ranks(allocateByMemory(profiles, shape, 0.625))).toEqual([
      [4, 8],
      [4, 4],
    ]);
    // weight layer 0 ten times: at 24 ranks full rank on layer 0 (0 + 0.35) now beats 10 · 0.2 + 0.1
    const w = allocateByMemory(profiles, shape, 0.75, { weights: [10, 1] });
    expect(ranks(w)).toEqual([
      [8, 8],
      [4, 4],
    ]);
    expect(w.weights).toEqual([10, 1]);
    expect(w.weightedError).toBeCloseTo(0.35 / 11, 15);
    expect(w.meanError).toBeCloseTo(0.175, 15);
  });

  it('at F = 1 on monotone profiles with exact full rank, the error is 0', () => {
    const rng = rngFor(2);
    for (let trial = 0; trial < 20; trial++) {
      const c = randomCase(rng, { mode: 'monotone' });
      for (const p of c.profiles) p.points.push(...fullRankIfMissing(p, c.shape.headDim));
      const a = allocateByMemory(c.profiles, c.shape, 1, { weights: c.weights });
      expect(a.feasible).toBe(true);
      expect(a.weightedError).toBe(0);
    }
  });

  it('is deterministic and independent of the order of grid points', () => {
    const rng = rngFor(3);
    for (let trial = 0; trial < 40; trial++) {
      const c = randomCase(rng, { mode: 'ties' });
      const fraction = 0.3 + 0.7 * rng();
      const a = allocateByMemory(c.profiles, c.shape, fraction, { weights: c.weights });
      const shuffled = c.profiles.map((p) => ({ layer: p.layer, points: shuffle(rng, p.points) }));
      expect(allocateByMemory(shuffled, c.shape, fraction, { weights: c.weights })).toEqual(a);
    }
  });

  it('infeasible target: the smallest allocation, feasible = false, a reason in bytes', () => {
    const shape = { kvHeads: 8, headDim: 128, bytesPerElement: 2 };
    const points = [
      { kRank: 64, vRank: 64, error: 0.2 },
      { kRank: 128, vRank: 128, error: 0 },
    ];
    const profiles = [0, 1, 2, 3].map((layer) => ({ layer, points }));
    const a = allocateByMemory(profiles, shape, 0.25);
    expect(a.feasible).toBe(false);
    expect(a.layers.every((l) => l.kRank === 64 && l.vRank === 64)).toBe(true);
    expect(a.totalBytesPerToken).toBe(4 * 2048);
    expect(a.reason).toMatch(/keeping 0\.25 of the KV cache is out of reach/);
    expect(a.reason).toMatch(
      /needs 8192 B\/token \(0\.5000 of the original\), more than the target of 4096 B\/token/,
    );
    expect(allocateByMemory(profiles, shape, 0.5).feasible).toBe(true);
  });
});

function fullRankIfMissing(p: LayerProfile, d: number) {
  return p.points.some((q) => q.kRank === d && q.vRank === d) ? [] : [{ kRank: d, vRank: d, error: 0 }];
}

describe('error budget (--budget): exact DP against brute force', () => {
  it('matches the brute-force least memory, meets the budget, picks Pareto points', () => {
    const rng = rngFor(4);
    const problems: string[] = [];
    const regimes = { infeasible: 0, boundary: 0, interior: 0 };
    for (let trial = 0; trial < TRIALS; trial++) {
      const c = randomCase(rng);
      const range = errorRange(c, rng());
      // a third of the budgets sit exactly on some combination's error: the ≤ must be honoured to the bit
      const kind = trial % 3;
      let budget =
        kind === 0
          ? range.picked
          : kind === 1
            ? range.min * 0.5
            : range.min + (range.max - range.min) * rng() * 1.1;
      if (!(budget > 0)) budget = 1e-3 + rng() * 0.1;
      const a = allocateByBudget(c.profiles, c.shape, budget, { weights: c.weights, method: 'dp' });
      const brute = bruteBudget(c, budget);
      const where = `trial ${trial} (budget ${budget})`;
      problems.push(...choiceProblems(c, a).map((p) => `${where}: ${p}`));
      if (!brute) {
        regimes.infeasible++;
        if (a.feasible || !/an error budget of .* is out of reach/.test(a.reason ?? ''))
          problems.push(`${where}: flags`);
        // the most accurate allocation: the least weighted error there is
        if (Math.abs(a.weightedError - range.min) > 1e-12) problems.push(`${where}: not the most accurate`);
        continue;
      }
      regimes[kind === 0 ? 'boundary' : 'interior']++;
      if (!a.feasible || a.reason !== undefined) problems.push(`${where}: flagged infeasible`);
      if (!(a.weightedError <= budget)) problems.push(`${where}: error ${a.weightedError} over budget`);
      if (rankTotal(a) !== brute.cost)
        problems.push(`${where}: ${rankTotal(a)} ranks, brute force ${brute.cost}`);
      expect(a.target).toEqual({ kind: 'budget', budget });
    }
    expect(problems).toEqual([]);
    expect(regimes.infeasible).toBeGreaterThan(20);
    expect(regimes.boundary).toBeGreaterThan(20);
    expect(regimes.interior).toBeGreaterThan(20);
  });

  it('among the cheapest allocations, returns the most accurate', () => {
    const rng = rngFor(5);
    for (let trial = 0; trial < 60; trial++) {
      const c = randomCase(rng);
      const { min, max } = errorRange(c, 0);
      const budget = Math.max(1e-6, min + (max - min) * rng());
      const a = allocateByBudget(c.profiles, c.shape, budget, { weights: c.weights });
      if (!a.feasible) continue;
      // the memory form at exactly this size cannot do better
      const m = allocateByMemory(c.profiles, c.shape, a.kvFraction, { weights: c.weights });
      expect(Math.abs(m.weightedError - a.weightedError)).toBeLessThanOrEqual(1e-12);
    }
  });

  it('bounds the weighted MEAN: scaling all weights, or repeating every layer, changes nothing', () => {
    const rng = rngFor(6);
    for (let trial = 0; trial < 40; trial++) {
      const c = randomCase(rng, { maxLayers: 3, mode: 'monotone' });
      const w = weightsOr1(c);
      const { min, max } = errorRange(c, 0);
      const budget = Math.max(1e-6, min + (max - min) * rng());
      const a = allocateByBudget(c.profiles, c.shape, budget, { weights: w });
      const scaled = allocateByBudget(c.profiles, c.shape, budget, { weights: w.map((x) => x * 8) });
      expect(scaled.layers).toEqual(a.layers);
      expect(scaled.weightedError).toBeCloseTo(a.weightedError, 14);
    }
    // Two copies of a model meet the same budget at the same per-layer ranks (a raw-sum budget would not).
    const points = [
      { kRank: 1, vRank: 1, error: 0.3 },
      { kRank: 2, vRank: 2, error: 0.1 },
      { kRank: 4, vRank: 4, error: 0 },
    ];
    const shape = { kvHeads: 1, headDim: 4, bytesPerElement: 2 };
    const model = (n: number) => Array.from({ length: n }, (_, layer) => ({ layer, points }));
    const small = allocateByBudget(model(5), shape, 0.1);
    const big = allocateByBudget(model(80), shape, 0.1);
    expect(small.kvFraction).toBe(big.kvFraction);
    expect(small.weightedError).toBeCloseTo(big.weightedError, 14);
  });

  it('infeasible budget: the most accurate (full-rank) allocation, feasible = false, a reason', () => {
    const shape = { kvHeads: 2, headDim: 8, bytesPerElement: 2 };
    const profiles = [0, 1].map((layer) => ({
      layer,
      points: [
        { kRank: 4, vRank: 4, error: 0.3 },
        { kRank: 8, vRank: 8, error: 0.02 },
      ],
    }));
    const a = allocateByBudget(profiles, shape, 0.01);
    expect(a.feasible).toBe(false);
    expect(a.layers.every((l) => l.kRank === 8 && l.vRank === 8)).toBe(true);
    expect(a.totalBytesPerToken).toBe(a.originalBytesPerToken);
    expect(a.reason).toMatch(/an error budget of 0\.01 is out of reach: .*weighted mean error 0\.02/);
    expect(allocateByBudget(profiles, shape, 0.02).feasible).toBe(true);
  });
});
