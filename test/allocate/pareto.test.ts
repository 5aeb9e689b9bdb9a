import { describe, expect, it } from 'vitest';

import { paretoFront } from '../../main/core/allocate/index.ts';
import type { ProfilePoint } from '../../main/core/allocate/index.ts';
import { randomCase, rankSumOf, rngFor, shuffle } from './helpers.ts';

const pt = (kRank: number, vRank: number, error: number): ProfilePoint => ({ kRank, vRank, error });

/** q dominates p: no dearer, no worse, and better in one of the two. */
const dominates = (q: ProfilePoint, p: ProfilePoint) =>
  rankSumOf(q) <= rankSumOf(p) && q.error <= p.error && (rankSumOf(q) < rankSumOf(p) || q.error < p.error);

describe('paretoFront', () => {
  it('drops dominated points, same-cost losers and exact ties after the lower kRank', () => {
    const points = [
      pt(8, 8, 0.5), // cost 16
      pt(8, 16, 0.3), // cost 24, ties with the next on cost and error
      pt(16, 8, 0.3), // cost 24: loses the tie to kRank 8
      pt(4, 20, 0.4), // cost 24 but worse than 0.3: dropped
      pt(16, 16, 0.3), // cost 32, no better than 0.3: dominated
      pt(24, 16, 0.1), // cost 40
      pt(32, 32, 0), // cost 64
      pt(24, 32, 0.2), // cost 56, worse than the cost-40 point: dominated
    ];
    expect(paretoFront(points)).toEqual([pt(8, 8, 0.5), pt(8, 16, 0.3), pt(24, 16, 0.1), pt(32, 32, 0)]);
  });

  it('keeps a single point, and a flat profile collapses to its cheapest point', () => {
    expect(paretoFront([pt(3, 3, 0.2)])).toEqual([pt(3, 3, 0.2)]);
    expect(paretoFront([pt(4, 4, 0), pt(2, 2, 0), pt(2, 4, 0)])).toEqual([pt(2, 2, 0)]);
  });

  it('on random grids: sorted, non-dominated, covers every dropped point, order-independent', () => {
    const rng = rngFor(11);
    const problems: string[] = [];
    for (let trial = 0; trial < 300; trial++) {
      const { profiles } = randomCase(rng);
      for (const { layer, points } of profiles) {
        const front = paretoFront(points);
        const where = `trial ${trial} layer ${layer}`;
        for (let i = 1; i < front.length; i++) {
          if (!(rankSumOf(front[i]) > rankSumOf(front[i - 1]) && front[i].error < front[i - 1].error)) {
            problems.push(`${where}: front not strictly monotone at ${i}`);
          }
        }
        for (const p of front) {
          if (points.some((q) => dominates(q, p))) problems.push(`${where}: kept a dominated point`);
        }
        for (const p of points) {
          // a dropped point is weakly dominated by something kept: never needed by an optimal allocation
          if (!front.includes(p) && !front.some((q) => rankSumOf(q) <= rankSumOf(p) && q.error <= p.error)) {
            problems.push(`${where}: dropped a point nothing kept covers`);
          }
        }
        if (JSON.stringify(paretoFront(shuffle(rng, points))) !== JSON.stringify(front)) {
          problems.push(`${where}: depends on input order`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
