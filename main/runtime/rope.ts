import { RankwiseError } from '../core/errors.ts';
import type { BlockRecipe, RopeRecipe } from '../model/types.ts';

/**
 * RoPE tables for positions offset … offset+T−1 in the rotate_half convention, laid out [T, 1, d] to
 * broadcast over heads. Angles are computed in float64 (position × invFreq[i], the recipe's frequencies
 * after any scaling) and rounded once; cos and sin carry the recipe's attention factor.
 * `sin` is signed for the swap-halves form used by the graphs: −sin on the first half, +sin on the second.
 */
export function ropeTables(
  T: number,
  d: number,
  rope: RopeRecipe,
  offset = 0,
): { cos: Float32Array; sin: Float32Array } {
  return ropeTablesIn(Float32Array, T, d, rope, offset);
}

/** The same tables in another float array type (float64 for the gradient checks). */
export function ropeTablesIn<A extends Float32Array | Float64Array>(
  Type: new (n: number) => A,
  T: number,
  d: number,
  rope: RopeRecipe,
  offset = 0,
): { cos: A; sin: A } {
  const half = d / 2;
  // The graphs rotate whole heads (pairs i, i + d/2); a partial rotary dimension pairs differently.
  if (rope.invFreq.length !== half) {
    throw new RankwiseError(
      'internal',
      `RoPE has ${rope.invFreq.length} frequencies; a head of ${d} needs ${half} (partial rotary is not supported)`,
    );
  }
  const factor = rope.attentionFactor;
  const cos = new Type(T * d);
  const sin = new Type(T * d);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = (t + offset) * rope.invFreq[i];
      const c = Math.cos(angle) * factor;
      const s = Math.sin(angle) * factor;
      cos[t * d + i] = c;
      cos[t * d + i + half] = c;
      sin[t * d + i] = -s;
      sin[t * d + i + half] = s;
    }
  }
  return { cos, sin };
}

/**
 * Additive attention mask [T, T]: 0 where query t sees key s, a large negative number elsewhere. Causal,
 * and with a sliding window W a query sees only its last W keys, t−W+1 … t.
 */
export function causalMask(T: number, window: number | null = null): Float32Array {
  const m = new Float32Array(T * T);
  for (let t = 0; t < T; t++) {
    if (window !== null) m.fill(-1e30, t * T, t * T + Math.max(0, t - window + 1));
    m.fill(-1e30, t * T + t + 1, (t + 1) * T);
  }
  return m;
}

/**
 * The sliding window of layer `layer`, or null for full causal attention. Without a layer index the
 * answer exists only when every layer has the same window; a model that alternates (Gemma 2) must say
 * which layer runs, or the wrong mask would pass silently.
 */
export function layerWindow(block: BlockRecipe, layer?: number): number | null {
  const windows = block.slidingWindow;
  if (layer !== undefined) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= windows.length) {
      throw new RankwiseError('internal', `layer ${layer} has no sliding-window entry`);
    }
    return windows[layer];
  }
  const first = windows.length > 0 ? windows[0] : null;
  if (windows.some((w) => w !== first)) {
    throw new RankwiseError(
      'internal',
      'the layers have different attention windows: name the layer that runs',
    );
  }
  return first;
}
