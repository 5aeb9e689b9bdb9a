import { describe, expect, it } from 'vitest';
import { eigh, matmul, qr, solveTriangular, svd } from '../../native-kernels/index.ts';
import { kqsvdPair, logitError2, truncatePair } from '../../main/methods/kqsvd.ts';
import { leadingColumns, orthonormalPair, transpose } from '../../main/methods/linalg.ts';
import { mulberry32 } from '../../main/model/prng.ts';
import type { FactorPair } from '../../main/core/kv.ts';

/** N×d Gaussian rows scaled per column, plus a shared random mixing so columns correlate. */
function data(n: number, d: number, scales: number[], seed: number): Float64Array {
  const rng = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const x = Float64Array.from({ length: n * d }, (_, i) => gauss() * scales[i % d]);
  const mix = Float64Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? 1 : 0) + 0.3 * gauss());
  return matmul(x, n, d, mix, d);
}

const gram = (x: Float64Array, n: number, d: number) => matmul(transpose(x, n, d), d, n, x, d);

/** ‖K Qᵀ − K A Bᵀ Qᵀ‖_F computed on the data itself, not from Grams. */
function logitErrorDirect(
  k: Float64Array,
  q: Float64Array,
  n: number,
  m: number,
  d: number,
  p: FactorPair,
): number {
  const full = matmul(k, n, d, transpose(q, m, d), m);
  const ka = matmul(k, n, d, p.a, p.rank);
  const qb = matmul(q, m, d, p.b, p.rank);
  const approx = matmul(ka, n, p.rank, transpose(qb, m, p.rank), m);
  let s = 0;
  for (let i = 0; i < full.length; i++) s += (full[i] - approx[i]) ** 2;
  return Math.sqrt(s);
}

describe('KQ-SVD (methods.md §6, §11.3–4)', () => {
  const d = 16;
  const n = 400;
  const m = 600;
  const k = data(
    n,
    d,
    Array.from({ length: d }, (_, i) => 1 / (1 + i)),
    1,
  );
  const q = data(
    m,
    d,
    Array.from({ length: d }, (_, i) => 0.5 + (i % 5)),
    2,
  );
  const cK = gram(k, n, d);
  const cQ = gram(q, m, d);
  const full = kqsvdPair(cK, cQ, d);
  const sigmaKQ = svd(matmul(k, n, d, transpose(q, m, d), m), n, m).s;

  it('attains the Eckart–Young bound of K·Qᵀ at every rank', () => {
    for (let r = 1; r <= d; r++) {
      const err = logitErrorDirect(k, q, n, m, d, truncatePair(full, d, r));
      let tail = 0;
      for (let i = r; i < sigmaKQ.length; i++) tail += sigmaKQ[i] ** 2;
      const bound = Math.sqrt(tail);
      if (r < d) expect(Math.abs(err - bound) / bound).toBeLessThan(1e-6);
      else expect(err / sigmaKQ[0]).toBeLessThan(1e-8);
    }
  });

  it('its σ are the singular values of K·Qᵀ, and A·Bᵀ = I at full rank', () => {
    // 1e-7, not machine precision: the streaming form adds a 1e-9·tr(C_K)/d ridge before the Cholesky.
    for (let i = 0; i < d; i++) expect(Math.abs(full.sigma[i] - sigmaKQ[i]) / sigmaKQ[0]).toBeLessThan(1e-7);
    const ab = matmul(full.a, d, d, transpose(full.b, d, d), d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) expect(ab[i * d + j]).toBeCloseTo(i === j ? 1 : 0, 9);
  });

  it('is at least as good as K-SVD and as [K; Q]-stacked PCA (both feasible points with A = B = P)', () => {
    const kBasis = eigh(cK, d).vectors;
    const stacked = eigh(
      Float64Array.from(cK, (v, i) => v + cQ[i]),
      d,
    ).vectors;
    for (let r = 1; r < d; r++) {
      const ours = logitErrorDirect(k, q, n, m, d, truncatePair(full, d, r));
      expect(ours).toBeLessThanOrEqual(
        logitErrorDirect(k, q, n, m, d, orthonormalPair(kBasis, d, r)) * (1 + 1e-9),
      );
      expect(ours).toBeLessThanOrEqual(
        logitErrorDirect(k, q, n, m, d, orthonormalPair(stacked, d, r)) * (1 + 1e-9),
      );
    }
  });

  it('the Gram-only logit error equals the error on the data', () => {
    for (const r of [1, 5, 11]) {
      const p = truncatePair(full, d, r);
      expect(Math.sqrt(logitError2(cK, cQ, p, d))).toBeCloseTo(logitErrorDirect(k, q, n, m, d, p), 6);
    }
  });

  it('the streaming Cholesky form and the QR form give the same σ and the same oblique projector', () => {
    // QR form: K = Q_K R_K, Q = Q_Q R_Q, SVD of R_K R_Qᵀ = U Σ Vᵀ, A = R_K⁻¹ U, B = R_Kᵀ U.
    const rk = qr(k, n, d).r;
    const rq = qr(q, m, d).r;
    const small = svd(matmul(rk, d, d, transpose(rq, d, d), d), d, d);
    const a = solveTriangular(rk, d, small.u, d, { lower: false });
    const b = matmul(transpose(rk, d, d), d, d, small.u, d);
    for (let i = 0; i < d; i++)
      expect(Math.abs(small.s[i] - full.sigma[i]) / full.sigma[0]).toBeLessThan(1e-7);
    for (const r of [2, 7, 12]) {
      const streaming = truncatePair(full, d, r);
      const pStream = matmul(streaming.a, d, r, transpose(streaming.b, d, r), d);
      const pQr = matmul(leadingColumns(a, d, r), d, r, transpose(leadingColumns(b, d, r), d, r), d);
      let diff = 0;
      for (let i = 0; i < d * d; i++) diff = Math.max(diff, Math.abs(pStream[i] - pQr[i]));
      expect(diff).toBeLessThan(1e-6);
    }
  });

  it('the logit error is non-increasing in rank', () => {
    let prev = Infinity;
    for (let r = 1; r <= d; r++) {
      const e = logitError2(cK, cQ, truncatePair(full, d, r), d);
      expect(e).toBeLessThanOrEqual(prev * (1 + 1e-12) + 1e-12);
      prev = e;
    }
  });

  it('beats K-SVD clearly when queries ignore the keys’ loudest directions', () => {
    // Keys are loud on dims 0–3; queries read only dims 4–15.
    const kScales = Array.from({ length: d }, (_, i) => (i < 4 ? 10 : 1));
    const qScales = Array.from({ length: d }, (_, i) => (i < 4 ? 0 : 1 + i / 4));
    const rng = mulberry32(9);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    const k2 = Float64Array.from({ length: n * d }, (_, i) => gauss() * kScales[i % d]);
    const q2 = Float64Array.from({ length: m * d }, (_, i) => gauss() * qScales[i % d]);
    const ck = gram(k2, n, d);
    const cq = gram(q2, m, d);
    const r = 4;
    const kq = logitErrorDirect(k2, q2, n, m, d, truncatePair(kqsvdPair(ck, cq, d), d, r));
    const ks = logitErrorDirect(k2, q2, n, m, d, orthonormalPair(eigh(ck, d).vectors, d, r));
    expect(kq).toBeLessThan(0.9 * ks);
  });
});
