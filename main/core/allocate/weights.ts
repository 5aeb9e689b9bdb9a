/**
 * Layer weights w_ℓ: how much one unit of a layer's error counts in the allocator's objective. The default
 * is 1 for every layer; stiefWeights is the StiefAttention paper's preset, offered, not imposed.
 */
import { badInput } from '../errors.ts';

/**
 * The StiefAttention "weighted Pareto" preset (methods.md §8.1, §9.4): early layers 2.0, late layers 1.75,
 * the rest 1. The paper does not say which layers are early or late; methods.md's default is the first and
 * last 4 of 32, which we generalise to the first and last ⌈L/8⌉. Where the two sets meet (L = 1) a layer
 * counts as early.
 */
export function stiefWeights(layers: number): number[] {
  if (!Number.isInteger(layers) || layers < 1) {
    throw badInput(`stiefWeights: the layer count must be an integer ≥ 1, got ${layers}`);
  }
  const edge = Math.ceil(layers / 8);
  return Array.from({ length: layers }, (_, i) => (i < edge ? 2.0 : i >= layers - edge ? 1.75 : 1));
}

/** The weights to use for `layers` profiles: the user's, checked, or all 1. */
export function resolveWeights(weights: readonly number[] | undefined, layers: number): number[] {
  if (weights === undefined) return new Array<number>(layers).fill(1);
  if (!Array.isArray(weights) || weights.length !== layers) {
    const got = Array.isArray(weights) ? `${weights.length} weights` : typeof weights;
    throw badInput(`layer weights: expected ${layers} (one per profiled layer), got ${got}`);
  }
  weights.forEach((w, i) => {
    if (typeof w !== 'number' || !Number.isFinite(w) || w <= 0) {
      throw badInput(`layer weights: each weight must be a finite number > 0; weight ${i} is ${w}`);
    }
  });
  return [...weights];
}
