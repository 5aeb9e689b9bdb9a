import { describe, expect, it } from 'vitest';

import { allocateByBudget, allocateByMemory, stiefWeights } from '../../main/core/allocate/index.ts';
import type { LayerProfile } from '../../main/core/allocate/index.ts';
import { badInputFrom } from './helpers.ts';

const shape = { kvHeads: 2, headDim: 8, bytesPerElement: 2 };
const points = [
  { kRank: 4, vRank: 4, error: 0.2 },
  { kRank: 8, vRank: 8, error: 0 },
];
const profiles: LayerProfile[] = [0, 1, 2].map((layer) => ({ layer, points }));

describe('bad inputs are badInput with the valid range in the message', () => {
  it('kvFraction outside (0, 1]', () => {
    for (const f of [0, 1.5, NaN, -0.25, Infinity]) {
      expect(badInputFrom(() => allocateByMemory(profiles, shape, f)).message).toBe(
        `kvFraction must be a number in (0, 1] (the share of the original KV cache to keep), got ${f}`,
      );
    }
    expect(allocateByMemory(profiles, shape, 1).feasible).toBe(true);
  });

  it('budget not finite and > 0', () => {
    for (const b of [-0.1, 0, NaN, Infinity]) {
      expect(badInputFrom(() => allocateByBudget(profiles, shape, b)).message).toMatch(
        /^budget must be a finite number > 0 \(a bound on the weighted mean relative layer-output error/,
      );
    }
  });

  it('weights of the wrong length, or not positive', () => {
    expect(badInputFrom(() => allocateByMemory(profiles, shape, 0.5, { weights: [1, 1] })).message).toBe(
      'layer weights: expected 3 (one per profiled layer), got 2 weights',
    );
    for (const w of [0, -1, NaN, Infinity]) {
      expect(badInputFrom(() => allocateByBudget(profiles, shape, 0.1, { weights: [1, w, 1] })).message).toBe(
        `layer weights: each weight must be a finite number > 0; weight 1 is ${w}`,
      );
    }
  });

  it('malformed profiles and shapes', () => {
    const bad = (p: LayerProfile[]) => badInputFrom(() => allocateByMemory(p, shape, 0.5)).message;
    expect(bad([])).toMatch(/need at least one layer profile/);
    expect(
      bad([
        { layer: 0, points },
        { layer: 0, points },
      ]),
    ).toMatch(/layer 0 appears more than once/);
    expect(bad([{ layer: 0, points: [] }])).toMatch(/profile of layer 0: no grid points/);
    expect(bad([{ layer: 0, points: [{ kRank: 9, vRank: 4, error: 0 }] }])).toMatch(
      /profile of layer 0: kRank must be an integer in \[1, 8\]/,
    );
    expect(bad([{ layer: 0, points: [{ kRank: 4, vRank: 4, error: -0.1 }] }])).toMatch(
      /the error at \(kRank 4, vRank 4\) must be a finite number ≥ 0, got -0\.1/,
    );
    expect(bad([{ layer: 0, points: [{ kRank: 4, vRank: 4, error: NaN }] }])).toMatch(/got NaN/);
    expect(bad([{ layer: 0, points: [points[0], { ...points[0], error: 0.3 }] }])).toMatch(
      /point \(kRank 4, vRank 4\) appears twice/,
    );
    expect(badInputFrom(() => allocateByMemory(profiles, { ...shape, kvHeads: 0 }, 0.5)).message).toMatch(
      /kvHeads must be an integer ≥ 1/,
    );
    expect(
      badInputFrom(() => allocateByMemory(profiles, shape, 0.5, { method: 'magic' as 'dp' })).message,
    ).toMatch(/method must be 'auto', 'dp' or 'lagrangian'/);
  });
});

describe('stiefWeights: the StiefAttention preset', () => {
  it('32 layers: first 4 at 2.0, last 4 at 1.75, the rest 1', () => {
    const w = stiefWeights(32);
    expect(w.slice(0, 4)).toEqual([2, 2, 2, 2]);
    expect(w.slice(4, 28)).toEqual(new Array(24).fill(1));
    expect(w.slice(28)).toEqual([1.75, 1.75, 1.75, 1.75]);
  });

  it('⌈L/8⌉ at each end; a layer in both counts as early', () => {
    expect(stiefWeights(1)).toEqual([2]);
    expect(stiefWeights(2)).toEqual([2, 1.75]);
    expect(stiefWeights(9)).toEqual([2, 2, 1, 1, 1, 1, 1, 1.75, 1.75]);
    expect(stiefWeights(80).filter((x) => x === 2).length).toBe(10);
    expect(badInputFrom(() => stiefWeights(0)).message).toMatch(/integer ≥ 1/);
  });

  it('is a preset, not the default', () => {
    expect(allocateByMemory(profiles, shape, 0.5).weights).toEqual([1, 1, 1]);
    expect(allocateByMemory(profiles, shape, 0.5, { weights: stiefWeights(3) }).weights).toEqual([
      2, 1, 1.75,
    ]);
  });
});
