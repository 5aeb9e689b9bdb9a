/**
 * Data model of rank allocation (ARCHITECTURE.md §6, methods.md §9.4). Everything here is plain data so
 * an Allocation can cross to the renderer and be written as JSON unchanged.
 *
 * Ranks are PER KV HEAD throughout this module (every KV head of a layer gets the same rank), unlike
 * methods.md §2.4, which writes per-layer totals r_K = H_kv · kRank. The byte formulas in bytes.ts do the
 * H_kv multiplication.
 */

/**
 * One measured point of a layer's error-rank profile. The wire type (contract's ProfilePoint) has the same
 * shape; core may not import contract, so the allocator names core's own.
 */
import type { RankPoint as ProfilePoint } from '../pareto.ts';
export type { ProfilePoint };

/**
 * A layer's error-rank profile: its measured grid, usually per-head ranks in multiples of max(1, d/8) up to
 * d on both axes (8 × 8 points, full rank included).
 */
export interface LayerProfile {
  /** Decoder-layer index in the model. */
  layer: number;
  points: ProfilePoint[];
}

/** What the byte arithmetic needs of the model; the same for every layer. */
export interface CacheShape {
  /** H_kv, key/value heads per layer. */
  kvHeads: number;
  /** d, per-head dimension. */
  headDim: number;
  /** b, bytes per cached element (2 for fp16/bf16). */
  bytesPerElement: number;
}

/** What an allocation was asked to meet; kept on the result so overrides can re-solve the same problem. */
export type AllocationTarget =
  | {
      kind: 'memory';
      /** The --kv-fraction F, in (0, 1]. */
      fraction: number;
      /** F · original bytes per token (all layers). */
      bytesPerToken: number;
    }
  | {
      kind: 'budget';
      /** The --budget E: a bound on the weighted MEAN error Σ w_ℓ E_ℓ / Σ w_ℓ. */
      budget: number;
    }
  | {
      kind: 'fixed';
      kRank: number;
      vRank: number;
    };

/** Which algorithm produced the layer choices. */
export type AllocationSolver = 'dp' | 'lagrangian' | 'fixed';

export interface LayerAllocation {
  layer: number;
  kRank: number;
  vRank: number;
  /** The profile's error at (kRank, vRank); NaN only for a fixed allocation off the profile grid. */
  error: number;
  /** (kRank + vRank) · H_kv · b. */
  bytesPerToken: number;
  /** Set by applyOverrides: the user chose this layer's ranks by hand, and re-solves keep them. */
  pinned: boolean;
}

export interface Allocation {
  /** One entry per profile, in the order the profiles were given. */
  layers: LayerAllocation[];
  /** Σ over layers of bytesPerToken. */
  totalBytesPerToken: number;
  /** L · 2 · H_kv · d · b: the uncompressed cache. */
  originalBytesPerToken: number;
  /** totalBytesPerToken / originalBytesPerToken. */
  kvFraction: number;
  /** Σ w_ℓ E_ℓ / Σ w_ℓ: the quantity an error budget bounds. */
  weightedError: number;
  /** Plain mean of the per-layer errors. */
  meanError: number;
  /** Whether the target is met. When false, `reason` says why and what was returned instead. */
  feasible: boolean;
  reason?: string;
  target: AllocationTarget;
  /** The layer weights w_ℓ used, aligned with `layers`. */
  weights: number[];
  /** The model's cache shape, kept so overrides can redo the byte arithmetic from the allocation alone. */
  shape: CacheShape;
  /** The algorithm that chose the layers that are not pinned. */
  solver: AllocationSolver;
  /**
   * Under the end-to-end objective: the chosen points' summed predicted effect, nats per token (the
   * model's perplexity is predicted to grow by exp of it). The errors above are then layer errors again.
   */
  predictedNllIncrease?: number;
}

/** Knobs shared by allocateByMemory and allocateByBudget. */
export interface AllocateOptions {
  /** w_ℓ, one positive number per profile (same order). Default: all 1. See stiefWeights for the paper's preset. */
  weights?: number[];
  /**
   * 'dp' (exact), 'lagrangian' (convex-hull greedy), or 'auto' (default): the DP unless its table or its
   * running time would pass the limits below, then the greedy.
   */
  method?: 'auto' | 'dp' | 'lagrangian';
  /** Layers × cost units above which 'auto' switches to the greedy (memory). Default 5e7. */
  dpCellLimit?: number;
  /** Σ Pareto-front sizes × cost units above which 'auto' switches to the greedy (time). Default 3e8. */
  dpWorkLimit?: number;
}

/** Options of applyOverrides. */
export interface OverrideOptions extends Pick<AllocateOptions, 'method' | 'dpCellLimit' | 'dpWorkLimit'> {
  /**
   * Re-solve the layers that are not pinned under the allocation's own target (memory or budget) with the
   * pinned layers' cost and error held fixed. Default false: only the pinned layers change.
   */
  reallocate?: boolean;
}

/** One hand-set layer for applyOverrides. */
export interface RankOverride {
  layer: number;
  kRank: number;
  vRank: number;
}
