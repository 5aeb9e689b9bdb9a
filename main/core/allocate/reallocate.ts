/**
 * Re-allocation of a finished job from its stored profiles (ARCHITECTURE.md §6): a new memory target or
 * error budget, hand-set layers, and optionally the other layers re-fitted around them. The engine's
 * `reallocate` method and the wizard's review (its target slider, its re-fit) both call this one function,
 * so what the wizard shows in milliseconds is bit for bit what the engine would answer.
 */
import { allocateByBudget, allocateByMemory } from './allocate.ts';
import { applyOverrides } from './overrides.ts';
import type { CacheShape, LayerProfile, RankOverride } from './types.ts';

export interface ReallocateInput {
  /** Exactly one of kvFraction and budget. */
  kvFraction?: number;
  budget?: number;
  weights?: number[];
  overrides?: readonly RankOverride[];
  /**
   * With overrides: re-solve the other layers under the same target, the overridden ones held fixed
   * (without it the other layers keep their ranks and the target may be missed).
   */
  refit?: boolean;
}

/** The wire form of an allocation: the contract's `Allocation`. */
export interface Reallocation {
  layers: { layer: number; kRank: number; vRank: number; error: number }[];
  kvBytesPerToken: { original: number; compressed: number };
  kvFraction: number;
  weightedError: number;
  feasible: boolean;
  reason?: string;
}

export function reallocateProfiles(
  profiles: readonly LayerProfile[],
  shape: CacheShape,
  input: ReallocateInput,
): Reallocation {
  const opts = { weights: input.weights };
  let allocation =
    input.kvFraction !== undefined
      ? allocateByMemory(profiles, shape, input.kvFraction, opts)
      : allocateByBudget(profiles, shape, input.budget!, opts);
  if (input.overrides?.length) {
    allocation = applyOverrides(allocation, profiles, input.overrides, { reallocate: input.refit === true });
  }
  return {
    layers: allocation.layers.map((l) => ({
      layer: l.layer,
      kRank: l.kRank,
      vRank: l.vRank,
      error: l.error,
    })),
    kvBytesPerToken: {
      original: allocation.originalBytesPerToken,
      compressed: allocation.totalBytesPerToken,
    },
    kvFraction: allocation.kvFraction,
    weightedError: allocation.weightedError,
    feasible: allocation.feasible,
    ...(allocation.reason ? { reason: allocation.reason } : {}),
  };
}
