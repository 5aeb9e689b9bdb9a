/**
 * Re-allocation of a finished job from its stored profiles (ARCHITECTURE.md §6): a new memory target or
 * error budget, hand-set layers, and optionally the other layers re-fitted around them. The engine's
 * `reallocate` method and the wizard's review (its target slider, its re-fit) both call this one function,
 * so what the wizard shows in milliseconds is bit for bit what the engine would answer.
 */
import { allocateByBudget, allocateByMemory } from './allocate.ts';
import { effectBudget, effectProfiles, inLayerErrors, type LayerEffect } from './effect.ts';
import { applyOverrides } from './overrides.ts';
import type { Allocation, CacheShape, LayerProfile, RankOverride } from './types.ts';

export interface ReallocateInput {
  /** Exactly one of kvFraction, budget and maxPplIncrease (which needs `effects`). */
  kvFraction?: number;
  budget?: number;
  maxPplIncrease?: number;
  /** The end-to-end objective: each layer's measured effects, solved over instead of its errors. */
  effects?: readonly LayerEffect[];
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
  /** End-to-end objective: the summed predicted effect of the layers' choices, nats per token. */
  predictedNllIncrease?: number;
}

/**
 * The allocation for a target, hand-set layers applied: over the layers' errors, or over their predicted
 * effects when `effects` are given (then told in layer errors again, with the summed effect beside them).
 */
export function allocateTarget(
  profiles: readonly LayerProfile[],
  shape: CacheShape,
  input: ReallocateInput,
): Allocation {
  const opts = { weights: input.weights };
  const solved = input.effects ? effectProfiles(profiles, input.effects) : profiles;
  let allocation =
    input.kvFraction !== undefined
      ? allocateByMemory(solved, shape, input.kvFraction, opts)
      : input.maxPplIncrease !== undefined
        ? allocateByBudget(solved, shape, effectBudget(input.maxPplIncrease, profiles.length), opts)
        : allocateByBudget(solved, shape, input.budget!, opts);
  if (input.overrides?.length) {
    allocation = applyOverrides(allocation, solved, input.overrides, { reallocate: input.refit === true });
  }
  if (!input.effects) return allocation;
  const told = inLayerErrors(allocation, profiles);
  const asked = input.maxPplIncrease;
  if (asked === undefined || told.feasible) return told;
  // the solver's reason speaks of its mean effect per layer; say it as the perplexity it predicts
  const rise = Math.expm1(told.predictedNllIncrease!);
  const reason =
    `the ${input.overrides?.length ? 'allocation with the hand-set ranks' : 'most accurate allocation'} is ` +
    `predicted to raise perplexity by ${(100 * rise).toFixed(1)} %, more than the ${(100 * asked).toFixed(1)} % asked`;
  return { ...told, reason };
}

export function reallocateProfiles(
  profiles: readonly LayerProfile[],
  shape: CacheShape,
  input: ReallocateInput,
): Reallocation {
  const allocation = allocateTarget(profiles, shape, input);
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
    ...(allocation.predictedNllIncrease !== undefined
      ? { predictedNllIncrease: allocation.predictedNllIncrease }
      : {}),
  };
}
