import { describe, expect, it } from 'vitest';

import {
  effectBudget,
  effectProfiles,
  predictEffect,
  predictedPerplexity,
  probePairs,
  type EffectProbe,
  type LayerEffect,
} from '../../main/core/allocate/effect.ts';
import { allocateTarget, reallocateProfiles, type LayerProfile } from '../../main/core/allocate/index.ts';
import { rankGrid } from '../../main/core/memory.ts';

const probe = (error: number, effect: number): EffectProbe => ({ kRank: 1, vRank: 1, error, effect });

describe('the map from layer error to end-to-end effect', () => {
  it('passes through monotone probes, grows as the error squared below the first, continues the last slope', () => {
    const probes = [probe(0.1, 0.01), probe(0.2, 0.05), probe(0.4, 0.2)];
    expect(predictEffect(probes, 0)).toBe(0);
    expect(predictEffect(probes, 0.1)).toBeCloseTo(0.01, 15);
    expect(predictEffect(probes, 0.05)).toBeCloseTo(0.01 / 4, 15);
    expect(predictEffect(probes, 0.15)).toBeCloseTo(0.03, 15);
    expect(predictEffect(probes, 0.4)).toBeCloseTo(0.2, 15);
    expect(predictEffect(probes, 0.5)).toBeCloseTo(0.2 + (0.15 / 0.2) * 0.1, 15);
  });

  it('pools probes that disagree with the order of their errors, and floors noise below zero', () => {
    // 0.3 predicts less than 0.2 measured: both become their mean; a negative effect (noise) counts as 0
    const probes = [probe(0.1, -0.002), probe(0.2, 0.08), probe(0.3, 0.04)];
    expect(predictEffect(probes, 0.1)).toBe(0);
    expect(predictEffect(probes, 0.2)).toBeCloseTo(0.06, 15);
    expect(predictEffect(probes, 0.3)).toBeCloseTo(0.06, 15);
    for (let e = 0; e < 0.6; e += 0.01)
      expect(predictEffect(probes, e + 0.01)).toBeGreaterThanOrEqual(predictEffect(probes, e));
  });

  it('probes the most accurate Pareto point within each share of the cache', () => {
    const d = 8;
    const grid = rankGrid(d);
    // error falls with both ranks, values twice as sensitive
    const points = grid.flatMap((k) =>
      grid.map((v) => ({ kRank: k, vRank: v, error: (d - k) / d + (2 * (d - v)) / d })),
    );
    const pairs = probePairs(points, d);
    expect(pairs.map((p) => p.kRank + p.vRank)).toEqual([12, 8, 4, 2]);
    for (const p of pairs) {
      const sameCost = points.filter((q) => q.kRank + q.vRank === p.kRank + p.vRank);
      expect(p.error).toBe(Math.min(...sameCost.map((q) => q.error)));
    }
  });

  it('turns a perplexity increase into the mean effect per layer the budget allocator bounds', () => {
    expect(effectBudget(0.05, 4) * 4).toBeCloseTo(Math.log(1.05), 15);
    expect(predictedPerplexity(7, Math.log(1.05))).toBeCloseTo(7.35, 12);
    expect(() => effectBudget(0, 4)).toThrow(/positive/);
    expect(() => effectBudget(Number.NaN, 4)).toThrow(/positive/);
  });
});

describe('allocation over predicted effects', () => {
  const d = 8;
  const shape = { kvHeads: 1, headDim: d, bytesPerElement: 2 };
  const grid = rankGrid(d);
  // two layers with the same errors; layer 1 moves the model's NLL ten times more per unit of error
  const profiles: LayerProfile[] = [0, 1].map((layer) => ({
    layer,
    points: grid.flatMap((k) =>
      grid.map((v) => ({ kRank: k, vRank: v, error: (d - k + (d - v)) / (2 * d) })),
    ),
  }));
  const effects: LayerEffect[] = [0, 1].map((layer) => ({
    layer,
    probes: [0.1, 0.3, 0.6].map((e) => ({
      kRank: 1,
      vRank: 1,
      error: e,
      effect: (layer === 0 ? 0.01 : 0.1) * e * e,
    })),
  }));

  it('is the exact optimum of the summed predicted effect (checked by brute force), told in layer errors', () => {
    const a = allocateTarget(profiles, shape, { kvFraction: 0.5, effects });
    const pts = profiles[0].points;
    let best = Number.POSITIVE_INFINITY;
    for (const p of pts)
      for (const q of pts) {
        if (p.kRank + p.vRank + q.kRank + q.vRank > 16) continue;
        best = Math.min(
          best,
          predictEffect(effects[0].probes, p.error) + predictEffect(effects[1].probes, q.error),
        );
      }
    expect(a.predictedNllIncrease).toBeCloseTo(best, 12);
    // the sensitive layer keeps more of its cache; the errors reported are the profile's
    const [l0, l1] = a.layers;
    expect(l1.kRank + l1.vRank).toBeGreaterThan(l0.kRank + l0.vRank);
    expect(l0.error).toBe(
      profiles[0].points.find((p) => p.kRank === l0.kRank && p.vRank === l0.vRank)!.error,
    );
    // the layer objective, blind to the difference, predicts worse
    const byError = allocateTarget(profiles, shape, { kvFraction: 0.5 });
    expect(byError.predictedNllIncrease).toBeUndefined();
    const predicted = byError.layers.reduce((s, l, i) => s + predictEffect(effects[i].probes, l.error), 0);
    expect(predicted).toBeGreaterThan(best * 1.5);
  });

  it('meets a perplexity target with the smallest cache whose predicted increase is within it', () => {
    const r = reallocateProfiles(profiles, shape, { maxPplIncrease: 0.01, effects });
    expect(Math.expm1(r.predictedNllIncrease!)).toBeLessThanOrEqual(0.01);
    const tighter = reallocateProfiles(profiles, shape, { maxPplIncrease: 0.001, effects });
    expect(tighter.kvBytesPerToken.compressed).toBeGreaterThan(r.kvBytesPerToken.compressed);
    expect(() => effectProfiles(profiles, effects.slice(0, 1))).toThrow(/layer 1 has no measured effects/);
  });
});
