/**
 * The job hooks most methods share: a fit from the statistics alone, the standard rank plan (the whole
 * grid for the allocator, or the fixed pair), no training cost, nothing of their own in the cache key.
 */
import { badInput, isUserError } from '../core/errors.ts';
import type { KeySpace } from '../core/kv.ts';
import type { ModelSpec } from '../model/types.ts';
import type { CompressionMethod, LayerCapture, LayerFit, MethodSettings, RankPlan } from './types.ts';

/** Per-head rank grid: multiples of max(1, ⌊d/8⌋) up to d, d included (ARCHITECTURE.md §6). */
export function rankGrid(d: number): number[] {
  const step = Math.max(1, Math.floor(d / 8));
  const grid: number[] = [];
  for (let r = step; r < d; r += step) grid.push(r);
  grid.push(d);
  return grid;
}

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
        if (isUserError(e) && !e.file) throw badInput(e.message, ctx.calib);
        throw e;
      }
    },
    rankPlan: (spec, s) => standardRankPlan(spec.headDim, s),
    cost: () => ({ training: null }),
    cacheKey: () => ({}),
  };
}
