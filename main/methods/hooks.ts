/**
 * The job hooks most methods share: a fit from the statistics alone, the standard rank plan (the whole
 * grid for the allocator, or the fixed pair), no training cost, nothing of their own in the cache key.
 */
import { isUserError, RankwiseError } from '../core/errors.ts';
import type { KeySpace } from '../core/kv.ts';
import { rankGrid } from '../core/memory.ts';
import type { ModelSpec } from '../model/types.ts';
import type { CompressionMethod, LayerCapture, LayerFit, MethodSettings, RankPlan } from './types.ts';

/** Every grid pair for the allocator, or the fixed pair (whose ranks are all a layer needs to serve). */
export function standardRankPlan(d: number, s: MethodSettings): RankPlan {
  if (!s.ranks) {
    const grid = rankGrid(d);
    return {
      profile: grid.flatMap((kRank) => grid.map((vRank) => ({ kRank, vRank }))),
      ranks: grid,
      choose: 'allocator',
    };
  }
  const { k, v } = s.ranks;
  return {
    profile: [{ kRank: k, vRank: v }],
    ranks: [...new Set([k, v])].sort((a, b) => a - b),
    choose: 'fixed',
  };
}

type Fit = (capture: LayerCapture, spec: ModelSpec, keySpace: KeySpace) => LayerFit;

/** The hooks of a method whose whole fit is `fit`, from the layer's statistics alone. */
export function closedFormHooks(fit: Fit): Omit<CompressionMethod, 'id' | 'summary' | 'keySpaces' | 'fit'> {
  return {
    train: async (ctx) => {
      try {
        return { fit: fit(ctx.capture, ctx.spec, ctx.keySpace) };
      } catch (e) {
        // a fit fails on what the calibration text gave it: name that text
        if (isUserError(e) && !e.file) throw new RankwiseError('bad-input', e.message, ctx.calib, e.setting);
        throw e;
      }
    },
    rankPlan: (spec, s) => standardRankPlan(spec.headDim, s),
    cost: () => ({ training: null }),
    cacheKey: () => ({}),
  };
}
