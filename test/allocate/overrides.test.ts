import { describe, expect, it } from 'vitest';

import {
  allocateByBudget,
  allocateByMemory,
  applyOverrides,
  fixedAllocation,
} from '../../main/core/allocate/index.ts';
import type { Allocation, LayerProfile, ProfilePoint } from '../../main/core/allocate/index.ts';
import type { Case } from './helpers.ts';
import {
  badInputFrom,
  capacityOf,
  forEachCombo,
  pick,
  randomCase,
  randomInt,
  rngFor,
  sum,
  weightsOr1,
} from './helpers.ts';

const ranksOf = (a: Allocation) => sum(a.layers.map((l) => l.kRank + l.vRank));

/** Brute force with some layers restricted to one point. */
function restrict(c: Case, pins: Map<number, ProfilePoint>): LayerProfile[] {
  return c.profiles.map((p) => (pins.has(p.layer) ? { layer: p.layer, points: [pins.get(p.layer)!] } : p));
}

function bruteWith(
  c: Case,
  pins: Map<number, ProfilePoint>,
  accept: (cost: number, mean: number) => boolean,
) {
  const w = weightsOr1(c);
  const total = sum(w);
  const out: { cost: number; mean: number }[] = [];
  forEachCombo(restrict(c, pins), w, (cost, weighted) => {
    if (accept(cost, weighted / total)) out.push({ cost, mean: weighted / total });
  });
  return out;
}

describe('applyOverrides', () => {
  it('pins exactly; without reallocate the other layers stay and totals follow', () => {
    const rng = rngFor(31);
    for (let trial = 0; trial < 60; trial++) {
      const c = randomCase(rng);
      const base = allocateByMemory(c.profiles, c.shape, 1 - rng() * 0.7, { weights: c.weights });
      const i = randomInt(rng, c.profiles.length);
      const point = pick(rng, c.profiles[i].points);
      const layer = c.profiles[i].layer;
      const a = applyOverrides(base, c.profiles, [{ layer, kRank: point.kRank, vRank: point.vRank }]);
      a.layers.forEach((l, j) => {
        if (j === i) {
          expect(l).toMatchObject({
            layer,
            kRank: point.kRank,
            vRank: point.vRank,
            error: point.error,
            pinned: true,
          });
        } else {
          expect(l).toEqual(base.layers[j]);
        }
      });
      expect(a.totalBytesPerToken).toBe(sum(a.layers.map((l) => l.bytesPerToken)));
      expect(a.target).toEqual(base.target);
      expect(a.weights).toEqual(base.weights);
      expect(a.feasible).toBe(ranksOf(a) <= capacityOf(c, (base.target as { fraction: number }).fraction));
      if (!a.feasible)
        expect(a.reason).toMatch(/the hand-set ranks put the cache at \d+ B\/token, above the target/);
      expect(base.layers.every((l) => !l.pinned)).toBe(true); // the input is not mutated
    }
  });

  it('with reallocate, re-solves the rest exactly under the same memory target', () => {
    const rng = rngFor(32);
    const problems: string[] = [];
    for (let trial = 0; trial < 120; trial++) {
      const c = randomCase(rng);
      const fraction = 1 - rng() * 0.8;
      const base = allocateByMemory(c.profiles, c.shape, fraction, { weights: c.weights });
      const i = randomInt(rng, c.profiles.length);
      const point = pick(rng, c.profiles[i].points);
      const layer = c.profiles[i].layer;
      const a = applyOverrides(base, c.profiles, [{ layer, ...point }], { reallocate: true });
      const cap = capacityOf(c, fraction);
      const fits = bruteWith(c, new Map([[layer, point]]), (cost) => cost <= cap);
      const where = `trial ${trial}`;
      if (a.layers[i].kRank !== point.kRank || a.layers[i].vRank !== point.vRank || !a.layers[i].pinned) {
        problems.push(`${where}: pin moved`);
      }
      if (a.layers.filter((l) => l.pinned).length !== 1) problems.push(`${where}: pinned flags`);
      if (fits.length === 0) {
        if (a.feasible || !/pinned by hand/.test(a.reason ?? '')) problems.push(`${where}: infeasible flags`);
        continue;
      }
      if (!a.feasible || ranksOf(a) > cap) problems.push(`${where}: target missed`);
      const best = Math.min(...fits.map((f) => f.mean));
      if (Math.abs(a.weightedError - best) > 1e-12) problems.push(`${where}: ${a.weightedError} vs ${best}`);
    }
    expect(problems).toEqual([]);
  });

  it('with reallocate, re-solves the rest exactly under the same error budget', () => {
    const rng = rngFor(33);
    const problems: string[] = [];
    for (let trial = 0; trial < 120; trial++) {
      const c = randomCase(rng);
      const budget = 0.02 + rng() * 0.4;
      const base = allocateByBudget(c.profiles, c.shape, budget, { weights: c.weights });
      const i = randomInt(rng, c.profiles.length);
      const point = pick(rng, c.profiles[i].points);
      const layer = c.profiles[i].layer;
      const a = applyOverrides(base, c.profiles, [{ layer, ...point }], { reallocate: true });
      const ok = bruteWith(c, new Map([[layer, point]]), (_cost, mean) => mean <= budget);
      const where = `trial ${trial}`;
      if (a.layers[i].kRank !== point.kRank || a.layers[i].vRank !== point.vRank)
        problems.push(`${where}: pin`);
      if (ok.length === 0) {
        if (a.feasible) problems.push(`${where}: should be infeasible`);
        continue;
      }
      if (!a.feasible || !(a.weightedError <= budget)) problems.push(`${where}: budget missed`);
      if (ranksOf(a) !== Math.min(...ok.map((f) => f.cost))) problems.push(`${where}: not the least memory`);
    }
    expect(problems).toEqual([]);
  });

  it('keeps earlier pins, lets a layer be re-pinned, and accepts dominated grid points', () => {
    const shape = { kvHeads: 2, headDim: 8, bytesPerElement: 2 };
    const points = [
      { kRank: 4, vRank: 4, error: 0.4 },
      { kRank: 4, vRank: 8, error: 0.2 },
      { kRank: 8, vRank: 4, error: 0.3 }, // dominated by (4, 8)
      { kRank: 8, vRank: 8, error: 0 },
    ];
    const profiles = [0, 1, 2].map((layer) => ({ layer, points }));
    const base = allocateByMemory(profiles, shape, 0.75);
    const one = applyOverrides(base, profiles, [{ layer: 0, kRank: 8, vRank: 4 }], { reallocate: true });
    expect(one.layers[0]).toMatchObject({ kRank: 8, vRank: 4, error: 0.3, pinned: true });
    const two = applyOverrides(one, profiles, [{ layer: 2, kRank: 4, vRank: 4 }], { reallocate: true });
    expect(two.layers[0]).toMatchObject({ kRank: 8, vRank: 4, pinned: true });
    expect(two.layers[2]).toMatchObject({ kRank: 4, vRank: 4, pinned: true });
    // 12 + 8 pinned of 36 ranks: layer 1 gets the rest, full rank
    expect(two.layers[1]).toMatchObject({ kRank: 8, vRank: 8, pinned: false });
    const again = applyOverrides(two, profiles, [{ layer: 0, kRank: 4, vRank: 4 }]);
    expect(again.layers[0]).toMatchObject({ kRank: 4, vRank: 4, error: 0.4, pinned: true });
    expect(again.layers.filter((l) => l.pinned).map((l) => l.layer)).toEqual([0, 2]);
  });

  it('pinning beyond the target: infeasible, with a reason that names the pins', () => {
    const shape = { kvHeads: 1, headDim: 8, bytesPerElement: 2 };
    const points = [
      { kRank: 2, vRank: 2, error: 0.5 },
      { kRank: 8, vRank: 8, error: 0 },
    ];
    const profiles = [0, 1].map((layer) => ({ layer, points }));
    const base = allocateByMemory(profiles, shape, 0.25);
    expect(base.feasible).toBe(true);
    const full = [0, 1].map((layer) => ({ layer, kRank: 8, vRank: 8 }));
    const kept = applyOverrides(base, profiles, full);
    expect(kept.feasible).toBe(false);
    const re = applyOverrides(base, profiles, full, { reallocate: true });
    expect(re.feasible).toBe(false);
    expect(re.reason).toMatch(/out of reach with 2 layer\(s\) pinned by hand/);
    const budget = allocateByBudget(profiles, shape, 0.3);
    const worse = applyOverrides(budget, profiles, [
      { layer: 0, kRank: 2, vRank: 2 },
      { layer: 1, kRank: 2, vRank: 2 },
    ]);
    expect(worse.feasible).toBe(false);
    expect(worse.reason).toMatch(/weighted mean error at 0\.5, above the budget of 0\.3/);
  });

  it('rejects off-grid points, unknown and repeated layers, mismatched profiles, and re-solving fixed ranks', () => {
    const shape = { kvHeads: 1, headDim: 8, bytesPerElement: 2 };
    const points = [
      { kRank: 4, vRank: 4, error: 0.5 },
      { kRank: 8, vRank: 8, error: 0 },
    ];
    const profiles = [0, 1].map((layer) => ({ layer, points }));
    const base = allocateByMemory(profiles, shape, 0.5);
    expect(
      badInputFrom(() => applyOverrides(base, profiles, [{ layer: 1, kRank: 4, vRank: 8 }])).message,
    ).toBe(
      "override for layer 1: (kRank 4, vRank 8) is not on the layer's profile grid (kRank in {4, 8}, vRank in {4, 8})",
    );
    expect(
      badInputFrom(() => applyOverrides(base, profiles, [{ layer: 5, kRank: 4, vRank: 4 }])).message,
    ).toMatch(/override for layer 5: no such layer \(profiled: 0, 1\)/);
    expect(
      badInputFrom(() =>
        applyOverrides(base, profiles, [
          { layer: 0, kRank: 4, vRank: 4 },
          { layer: 0, kRank: 8, vRank: 8 },
        ]),
      ).message,
    ).toMatch(/override for layer 0: given more than once/);
    expect(
      badInputFrom(() => applyOverrides(base, profiles, [{ layer: 0, kRank: 9, vRank: 4 }])).message,
    ).toMatch(/override for layer 0: kRank must be an integer in \[1, 8\]/);
    expect(badInputFrom(() => applyOverrides(base, profiles.slice(1), [])).message).toMatch(
      /the allocation covers layers \[0, 1\] but the profiles cover \[1\]/,
    );
    const fixed = fixedAllocation(profiles, shape, 4);
    expect(applyOverrides(fixed, profiles, [{ layer: 0, kRank: 8, vRank: 8 }]).layers[0].pinned).toBe(true);
    expect(
      badInputFrom(() =>
        applyOverrides(fixed, profiles, [{ layer: 0, kRank: 8, vRank: 8 }], { reallocate: true }),
      ).message,
    ).toMatch(/reallocate needs an allocation made for a memory target or an error budget/);
  });
});
