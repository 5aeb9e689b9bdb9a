import { describe, expect, it } from 'vitest';

import { fixedAllocation } from '../../main/core/allocate/index.ts';
import { badInputFrom } from './helpers.ts';

const shape = { kvHeads: 4, headDim: 16, bytesPerElement: 2 };
const profiles = [0, 1, 2].map((layer) => ({
  layer,
  points: [
    { kRank: 8, vRank: 8, error: 0.1 * (layer + 1) },
    { kRank: 8, vRank: 16, error: 0.05 },
    { kRank: 16, vRank: 16, error: 0 },
  ],
}));

describe('fixedAllocation (--k-rank / --v-rank)', () => {
  it('gives every layer the same point, errors from the profile', () => {
    const a = fixedAllocation(profiles, shape, 8);
    expect(a.layers.map((l) => [l.layer, l.kRank, l.vRank, l.error])).toEqual([
      [0, 8, 8, 0.1],
      [1, 8, 8, 0.2],
      [2, 8, 8, 0.30000000000000004],
    ]);
    expect(a.layers.every((l) => l.bytesPerToken === 16 * 4 * 2)).toBe(true);
    expect(a.kvFraction).toBe(0.5);
    expect(a.meanError).toBeCloseTo(0.2, 15);
    expect(a.feasible).toBe(true);
    expect(a.solver).toBe('fixed');
    expect(a.target).toEqual({ kind: 'fixed', kRank: 8, vRank: 8 });
    const w = fixedAllocation(profiles, shape, 8, 8, { weights: [3, 1, 1] });
    expect(w.weightedError).toBeCloseTo((0.3 + 0.2 + 0.3) / 5, 15);
    expect(fixedAllocation(profiles, shape, 8, 16).layers.map((l) => l.error)).toEqual([0.05, 0.05, 0.05]);
  });

  it('allows ranks off the grid, with NaN (unknown) errors', () => {
    const a = fixedAllocation(profiles, shape, 12, 5);
    expect(a.layers.every((l) => Number.isNaN(l.error) && l.kRank === 12 && l.vRank === 5)).toBe(true);
    expect(a.weightedError).toBeNaN();
    expect(a.meanError).toBeNaN();
    expect(a.totalBytesPerToken).toBe(3 * 17 * 4 * 2);
  });

  it('rejects ranks outside [1, d] and non-integers', () => {
    for (const r of [0, 17, 2.5, NaN, -1]) {
      expect(badInputFrom(() => fixedAllocation(profiles, shape, r)).message).toMatch(
        /^ranks\.k must be an integer in \[1, 16\] \(per KV head, at most head_dim\)/,
      );
    }
    expect(badInputFrom(() => fixedAllocation(profiles, shape, 4, 32)).message).toMatch(/^ranks\.v must be/);
  });
});
