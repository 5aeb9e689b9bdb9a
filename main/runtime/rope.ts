/**
 * RoPE tables for positions offset … offset+T−1 in the rotate_half convention, laid out [T, 1, d] to
 * broadcast over heads. Angles are computed in float64 (position × θ^(−2i/d)) and rounded once.
 * `sin` is signed for the swap-halves form used by the graphs: −sin on the first half, +sin on the second.
 */
export function ropeTables(
  T: number,
  d: number,
  theta: number,
  offset = 0,
): { cos: Float32Array; sin: Float32Array } {
  return ropeTablesIn(Float32Array, T, d, theta, offset);
}

/** The same tables in another float array type (float64 for the gradient checks). */
export function ropeTablesIn<A extends Float32Array | Float64Array>(
  Type: new (n: number) => A,
  T: number,
  d: number,
  theta: number,
  offset = 0,
): { cos: A; sin: A } {
  const half = d / 2;
  const cos = new Type(T * d);
  const sin = new Type(T * d);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = (t + offset) * Math.pow(theta, (-2 * i) / d);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[t * d + i] = c;
      cos[t * d + i + half] = c;
      sin[t * d + i] = -s;
      sin[t * d + i + half] = s;
    }
  }
  return { cos, sin };
}

/** Additive causal mask [T, T]: 0 on and below the diagonal, a large negative number above it. */
export function causalMask(T: number): Float32Array {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) m.fill(-1e30, i * T + i + 1, (i + 1) * T);
  return m;
}
