/**
 * Uniform ranks (--k-rank R --v-rank R): every layer gets the same point, no search. This is the baseline
 * the allocator is compared against, and the way to reproduce a paper's fixed-rank setting.
 */
import { summarize } from './summary.ts';
import type { Allocation, CacheShape, LayerProfile, ProfilePoint } from './types.ts';
import { validateProfiles, validateRank, validateShape } from './validate.ts';
import { resolveWeights } from './weights.ts';

/**
 * Every layer at (kRank, vRank), per KV head; vRank defaults to kRank. Ranks must be integers in [1, d]
 * (badInput otherwise) but need not be on the profile grid: a fixed rank is a legitimate request even where
 * nothing was measured. A layer's error is then its profile's value at that point if the point was measured,
 * else NaN ("unknown", not 0), and weightedError / meanError are NaN too; a profile may even have no points.
 * Always feasible: there is no target to miss.
 */
export function fixedAllocation(
  profiles: readonly LayerProfile[],
  shape: CacheShape,
  kRank: number,
  vRank: number = kRank,
  opts: { weights?: number[] } = {},
): Allocation {
  validateShape(shape);
  validateRank(kRank, shape.headDim, 'ranks.k', 'ranks.k');
  validateRank(vRank, shape.headDim, 'ranks.v', 'ranks.v');
  validateProfiles(profiles, shape.headDim, true);
  const weights = resolveWeights(opts.weights, profiles.length);
  const choices = profiles.map((p) => {
    const measured = p.points.find((q) => q.kRank === kRank && q.vRank === vRank);
    const point: ProfilePoint = { kRank, vRank, error: measured ? measured.error : NaN };
    return { layer: p.layer, point, pinned: false };
  });
  return summarize(choices, shape, weights, { kind: 'fixed', kRank, vRank }, 'fixed', { feasible: true });
}
