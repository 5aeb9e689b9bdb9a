import { describe, expect, it } from 'vitest';
import {
  eigenThresholdSweep,
  rankAtThreshold,
  singularShares,
  type EigenFit,
} from '../../main/methods/eigen.ts';

const d = 16;
/** A fit whose spectra decay geometrically; only the spectra matter to the sweep. */
function fakeFit(decay: number): EigenFit {
  const eig = Float64Array.from({ length: d }, (_, i) => decay ** (2 * i));
  return {
    keySpace: 'pre-rope',
    at: () => {
      throw new Error('not used');
    },
    spectra: {
      keys: singularShares(eig),
      values: [singularShares(eig), singularShares(eig.map((v) => v * 0.5))],
    },
  };
}

describe('EigenAttention threshold sweep (methods.md §9.1, §11.9)', () => {
  it('keeps the last threshold whose error is under budget', async () => {
    // Error grows as ranks shrink: 1 − (kRank + vRank) / 2d.
    const error = async (k: number, v: number) => 1 - (k + v) / (2 * d);
    const r = await eigenThresholdSweep(fakeFit(0.9), d, 0.2, error);
    const under = r.trace.filter((p) => p.error < 0.2);
    expect(r.error).toBeLessThan(0.2);
    expect(r.threshold).toBe(under[under.length - 1].threshold);
    // The step after it broke the budget (the floor at 0.45·d was not what stopped the sweep).
    const last = r.trace[r.trace.length - 1];
    expect(last.error).toBeGreaterThanOrEqual(0.2);
    expect(last.kRank).toBeGreaterThan(0.45 * d);
    // Thresholds step by 0.02 from 1.0.
    r.trace.forEach((p, i) => expect(p.threshold).toBeCloseTo(1 - 0.02 * i, 12));
  });

  it('ranks are the count of normalised singular values whose running sum stays under the threshold', () => {
    const shares = singularShares(Float64Array.of(16, 4, 1, 0));
    expect(Array.from(shares)).toEqual([4 / 7, 2 / 7, 1 / 7, 0]);
    expect(rankAtThreshold(shares, 0.5)).toBe(0);
    expect(rankAtThreshold(shares, 0.6)).toBe(1);
    expect(rankAtThreshold(shares, 0.9)).toBe(2);
  });

  it('stays at full rank when even the first threshold misses the budget', async () => {
    const r = await eigenThresholdSweep(fakeFit(0.9), d, 0.01, async (k, v) =>
      k === d && v === d ? 0 : 0.5,
    );
    expect([r.kRank, r.vRank, r.error]).toEqual([d, d, 0]);
  });

  it('stops at the 45 % floor when the budget is never reached', async () => {
    const r = await eigenThresholdSweep(fakeFit(0.5), d, 10, async () => 0);
    const last = r.trace[r.trace.length - 1];
    expect(Math.min(last.kRank, last.vRank)).toBeLessThanOrEqual(0.45 * d);
    expect(r.threshold).toBe(r.trace[r.trace.length - 2].threshold);
  });
});
