/**
 * Plain TypeScript linear algebra for checking the native kernels independently: matrix helpers, a cyclic
 * Jacobi eigenvalue routine, Cholesky–Banachiewicz, Gram–Schmidt QR (twice), triangular substitution.
 * All matrices are row-major Float64Arrays. Slow (O(n³) in JS): for small n only.
 */
import { mulberry32, normal, randomOrthonormal } from '../../main/model/prng.ts';

export type Rng = () => number;

export function rng(seed: number): Rng {
  return mulberry32(seed);
}

/** rows×cols standard normal entries. */
export function randn(rows: number, cols: number, r: Rng): Float64Array {
  return Float64Array.from(normal(rows * cols, r));
}

/** An n×n orthogonal matrix (modified Gram–Schmidt twice, from main/model/prng.ts). */
export function randomOrthogonal(n: number, r: Rng): Float64Array {
  return randomOrthonormal(n, n, r);
}

/** rows×cols with orthonormal columns (cols ≤ rows). */
export function randomStiefel(rows: number, cols: number, r: Rng): Float64Array {
  // randomOrthonormal stores vector j contiguously, i.e. it is the row-major cols×rows transpose.
  return transpose(randomOrthonormal(rows, cols, r), cols, rows);
}

export function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/** C = A B, A m×k, B k×n (ikj loop). */
export function matmulJs(a: Float64Array, m: number, k: number, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      for (let j = 0; j < n; j++) c[i * n + j] += aip * b[p * n + j];
    }
  }
  return c;
}

/** A diag(d) (scales column j of the m×k matrix A by d[j]). */
export function scaleColumns(a: Float64Array, m: number, k: number, d: ArrayLike<number>): Float64Array {
  const out = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) out[i * k + j] = a[i * k + j] * d[j];
  return out;
}

export function identity(n: number): Float64Array {
  const e = new Float64Array(n * n);
  for (let i = 0; i < n; i++) e[i * n + i] = 1;
  return e;
}

export function frobenius(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** ‖A − B‖_F / ‖A‖_F (or the absolute difference when A = 0). */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i] - b[i]) ** 2;
  const na = frobenius(a);
  return na === 0 ? Math.sqrt(d) : Math.sqrt(d) / na;
}

/** Q diag(d) Qᵀ for an n×n Q: a symmetric matrix with eigenvalues d. */
export function symmetricWithSpectrum(q: Float64Array, d: ArrayLike<number>, n: number): Float64Array {
  const a = matmulJs(scaleColumns(q, n, n, d), n, n, transpose(q, n, n), n);
  // exact symmetry (the product is symmetric only up to rounding)
  for (let i = 0; i < n; i++)
    for (let j = 0; j < i; j++) {
      const v = 0.5 * (a[i * n + j] + a[j * n + i]);
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
  return a;
}

/** k values spaced logarithmically from `hi` down to `lo`. */
export function logSpectrum(k: number, hi: number, lo: number): Float64Array {
  const s = new Float64Array(k);
  for (let i = 0; i < k; i++) s[i] = k === 1 ? hi : hi * Math.pow(lo / hi, i / (k - 1));
  return s;
}

/**
 * Cyclic Jacobi eigenvalue algorithm for a symmetric n×n matrix: values (descending) and the matching
 * eigenvectors as columns of a row-major n×n matrix.
 */
export function jacobiEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = identity(n);
  const scale = frobenius(a) || 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] ** 2;
    if (Math.sqrt(off) <= 1e-17 * scale) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (apq === 0) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // M ← Jᵀ M J with J the rotation in the (p, q) plane; V ← V J
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => m[j * n + j] - m[i * n + i]);
  const values = Float64Array.from(order, (i) => m[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((src, j) => {
    for (let i = 0; i < n; i++) vectors[i * n + j] = v[i * n + src];
  });
  return { values, vectors };
}

/** Cholesky–Banachiewicz: lower-triangular L with A = L Lᵀ (throws when a pivot is not positive). */
export function choleskyJs(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(s > 0)) throw new Error(`not positive definite at ${i}`);
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j];
      }
    }
  }
  return l;
}

/** Thin QR by classical Gram–Schmidt applied twice (full column rank, m ≥ n): Q m×n, R n×n, diag(R) > 0. */
export function gramSchmidtQr(a: Float64Array, m: number, n: number): { q: Float64Array; r: Float64Array } {
  const q = new Float64Array(m * n);
  const r = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const v = new Float64Array(m);
    for (let i = 0; i < m; i++) v[i] = a[i * n + j];
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += q[i * n + k] * v[i];
        r[k * n + j] += dot;
        for (let i = 0; i < m; i++) v[i] -= dot * q[i * n + k];
      }
    }
    const norm = frobenius(v);
    r[j * n + j] = norm;
    for (let i = 0; i < m; i++) q[i * n + j] = v[i] / norm;
  }
  return { q, r };
}

/** X solving T X = B (or Tᵀ X = B) by substitution, reading only the named triangle of T. */
export function substitute(
  t: Float64Array,
  n: number,
  b: Float64Array,
  cols: number,
  lower: boolean,
  transposeT: boolean,
): Float64Array {
  // Tᵀ of a lower-triangular T is upper triangular, and vice versa.
  const at = (i: number, j: number) => (transposeT ? t[j * n + i] : t[i * n + j]);
  const effLower = lower !== transposeT;
  const x = new Float64Array(n * cols);
  for (let c = 0; c < cols; c++) {
    for (let step = 0; step < n; step++) {
      const i = effLower ? step : n - 1 - step;
      let s = b[i * cols + c];
      if (effLower) for (let k = 0; k < i; k++) s -= at(i, k) * x[k * cols + c];
      else for (let k = i + 1; k < n; k++) s -= at(i, k) * x[k * cols + c];
      x[i * cols + c] = s / at(i, i);
    }
  }
  return x;
}
