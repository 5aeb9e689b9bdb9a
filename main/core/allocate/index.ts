/**
 * Rank allocation: from per-layer error-rank profiles to per-layer (kRank, vRank), under a memory target or
 * an error budget (ARCHITECTURE.md §6, methods.md §9.4). Pure and synchronous: no model is run here.
 */
export { allocateByBudget, allocateByMemory } from './allocate.ts';
export { layerFullBytes, pointBytes } from './bytes.ts';
export { fixedAllocation } from './fixed.ts';
export { applyOverrides } from './overrides.ts';
export { paretoFront } from './pareto.ts';
export { DEFAULT_DP_CELL_LIMIT, DEFAULT_DP_WORK_LIMIT } from './solve.ts';
export { stiefWeights } from './weights.ts';
export type {
  Allocation,
  AllocateOptions,
  AllocationSolver,
  AllocationTarget,
  CacheShape,
  LayerAllocation,
  LayerProfile,
  OverrideOptions,
  ProfilePoint,
  RankOverride,
} from './types.ts';
export { allocateTarget, reallocateProfiles } from './reallocate.ts';
export { effectBudget, predictedPerplexity, predictEffect } from './effect.ts';
export type { EffectProbe, LayerEffect } from './effect.ts';
export type { ReallocateInput, Reallocation } from './reallocate.ts';
