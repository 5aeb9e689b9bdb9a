/**
 * Small helpers on row-major float64 matrices (d×d and d×r), for the methods' closed forms. The heavy
 * factorisations are the native kernels'; these are the index shuffles and sums around them.
 */
import type { FactorPair } from '../core/kv.ts';

/** The first r columns of a row-major n×n matrix (eigenvectors sorted by descending eigenvalue). */
export function leadingColumns(m: Float64Array, n: number, r: number): Float64Array {
  const out = new Float64Array(n * r);
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) out[i * r + j] = m[i * n + j];
  return out;
}

/** Element-wise sum of equally sized matrices. */
export function sum(ms: Float64Array[]): Float64Array {
  const out = new Float64Array(ms[0].length);
  for (const m of ms) for (let i = 0; i < m.length; i++) out[i] += m[i];
  return out;
}

export function transpose(m: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = m[i * cols + j];
  return out;
}

export function identity(n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

export function trace(m: Float64Array, n: number): number {
  let t = 0;
  for (let i = 0; i < n; i++) t += m[i * n + i];
  return t;
}

/** An orthonormal basis truncated to rank r, as the factor pair A = B = P_r. */
export function orthonormalPair(basis: Float64Array, d: number, r: number): FactorPair {
  const p = leadingColumns(basis, d, r);
  return { a: p, b: p, rank: r };
}

/** Rows [r0, r0+n) of a row-major [rows, cols] float32 matrix, as float64. */
export function rowBlock(m: Float32Array, cols: number, r0: number, n: number): Float64Array {
  return Float64Array.from(m.subarray(r0 * cols, (r0 + n) * cols));
}

/** Columns [c0, c0+n) of a row-major [rows, cols] float32 matrix, as a float64 [rows, n] matrix. */
export function columnBlock(
  m: Float32Array,
  rows: number,
  cols: number,
  c0: number,
  n: number,
): Float64Array {
  const out = new Float64Array(rows * n);
  for (let i = 0; i < rows; i++) for (let j = 0; j < n; j++) out[i * n + j] = m[i * cols + c0 + j];
  return out;
}
