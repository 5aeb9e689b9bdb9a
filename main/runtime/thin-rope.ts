/**
 * RoPE in the thin space (methods.md §2.2, R3): the r-dimensional thin queries q·B and keys x·W_K·A are
 * rotated by RoPE planes of their own, so attention runs on r numbers per key and nothing is rebuilt.
 *
 * Layout of r thin dimensions, h = ⌊r/2⌋: dimensions j and j + h (j < h) form thin plane j, which turns
 * at the frequency of original plane `planes[j]` in the rotate_half convention the model uses; an odd
 * r's last dimension is not rotated. Choosing A = B = the coordinates of the original planes kept makes
 * thin attention exactly the original attention restricted to those planes (a rotation commutes with
 * nothing else, so no other start is exact); fine-tuning then moves A and B freely.
 *
 * The tables are cut from rope.ts's: the same float64 angles rounded once, so the in-memory graphs and
 * the exported decoder rotate with the same numbers.
 */
export { checkRopePlanes } from '../model/kv-layout.ts';
import type { RopeRecipe } from '../model/types.ts';
import { ropeTablesIn } from './rope.ts';

/** Thin planes in a rank-r thin space. */
export const thinPlaneCount = (r: number): number => Math.floor(r / 2);

/**
 * cos and signed sin of the thin space for positions offset … offset+T−1, [T, r] each: plane j's cos at
 * j and j + h, −sin at j and +sin at j + h; an odd r's last column has cos = the recipe's attention
 * factor (the scale every rotated dimension carries) and sin = 0.
 */
export function thinRopeTables<A extends Float32Array | Float64Array>(
  Type: new (n: number) => A,
  rope: RopeRecipe,
  planes: readonly number[],
  r: number,
  T: number,
  offset = 0,
): { cos: A; sin: A } {
  const h = thinPlaneCount(r);
  const sub = { ...rope, invFreq: planes.map((p) => rope.invFreq[p]) };
  const part = h > 0 ? ropeTablesIn(Type, T, 2 * h, sub, offset) : null;
  const cos = new Type(T * r);
  const sin = new Type(T * r);
  for (let t = 0; t < T; t++) {
    if (part) {
      cos.set(part.cos.subarray(t * 2 * h, (t + 1) * 2 * h), t * r);
      sin.set(part.sin.subarray(t * 2 * h, (t + 1) * 2 * h), t * r);
    }
    if (r % 2 === 1) cos[t * r + r - 1] = rope.attentionFactor;
  }
  return { cos, sin };
}

/** For each thin dimension, the one rotate_half swaps it with (itself for the unrotated one). */
export function thinSwap(r: number): number[] {
  const h = thinPlaneCount(r);
  return Array.from({ length: r }, (_, j) => (j < h ? j + h : j < 2 * h ? j - h : j));
}

/**
 * The d×r matrix that reads the coordinates of `planes` (both halves) into the thin layout, plus, for an
 * odd r, `extra` (an original coordinate, or −1 for a zero column) into the last dimension.
 */
export function planeSelection(d: number, r: number, planes: readonly number[], extra = -1): Float64Array {
  const h = thinPlaneCount(r);
  const s = new Float64Array(d * r);
  planes.forEach((p, j) => {
    s[p * r + j] = 1;
    s[(p + d / 2) * r + j + h] = 1;
  });
  if (r % 2 === 1 && extra >= 0) s[extra * r + r - 1] = 1;
  return s;
}
