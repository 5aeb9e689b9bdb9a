/**
 * The native kernels (native-kernels/): reconstruction and orthogonality to 1e-10 on random and
 * ill-conditioned matrices from 1×1 to 1024×1024, conventions (order, signs, triangles), independent
 * checks against plain TypeScript routines (test/native/reference.ts), argument and NaN/Inf errors, both
 * instruction-set variants, worker threads, and that AVX2 instructions stay inside the AVX2 build.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  NativeKernelError,
  cholesky,
  eigh,
  matmul,
  nativeInfo,
  nativeKernels,
  qr,
  solveTriangular,
  svd,
  type NativeKernels,
  type NativeVariant,
} from '../../native-kernels/index.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import {
  choleskyJs,
  frobenius,
  gramSchmidtQr,
  identity,
  jacobiEigen,
  logSpectrum,
  matmulJs,
  maxAbsDiff,
  randn,
  randomOrthogonal,
  randomStiefel,
  relDiff,
  rng,
  scaleColumns,
  substitute,
  symmetricWithSpectrum,
  transpose,
} from './reference.ts';

const TOL = 1e-10;
const ADDON = path.join(REPO_ROOT, 'native-kernels', 'build', 'Release', 'rankwise_native.node');

const info = nativeInfo();
/** The variant in use gets every case; the other one (when this CPU runs both) all but the 1024×1024 ones. */
const variants = info.available.map((v) => ({ variant: v, full: v === info.variant }));

// ---------------------------------------------------------------------------------------------------
// checks shared by the cases

/** ‖XᵀX − I‖_max for X rows×cols, the product computed by k.matmul (itself checked against JS below). */
function orthogonalityError(k: NativeKernels, x: Float64Array, rows: number, cols: number): number {
  return maxAbsDiff(k.matmul(transpose(x, rows, cols), cols, rows, x, cols), identity(cols));
}

/** The index of the largest-|.| entry of column j (the first on exact ties). */
function argmaxAbsColumn(x: Float64Array, rows: number, cols: number, j: number): number {
  let best = 0;
  for (let i = 1; i < rows; i++) if (Math.abs(x[i * cols + j]) > Math.abs(x[best * cols + j])) best = i;
  return best;
}

/** Columns whose largest-|.| component is not positive (expected: none). */
function badSignColumns(x: Float64Array, rows: number, cols: number): number[] {
  const bad: number[] = [];
  for (let j = 0; j < cols; j++) if (!(x[argmaxAbsColumn(x, rows, cols, j) * cols + j] > 0)) bad.push(j);
  return bad;
}

function expectSignNormalised(x: Float64Array, rows: number, cols: number): void {
  expect(badSignColumns(x, rows, cols)).toEqual([]);
}

function expectDescending(v: Float64Array): void {
  const bad: number[] = [];
  for (let i = 1; i < v.length; i++) if (!(v[i] <= v[i - 1])) bad.push(i);
  expect(bad).toEqual([]);
}

/** Bit-for-bit equality without a per-element expect (vitest's deep equality is slow on 1M elements). */
function expectIdentical(a: Float64Array, b: Float64Array): void {
  expect(a.length).toBe(b.length);
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) differ++;
  expect(differ).toBe(0);
}

/** Entries of the rows×cols matrix x outside the allowed triangle that are not +0 (expected: none). */
function nonZeroOutside(
  x: Float64Array,
  rows: number,
  cols: number,
  keep: (i: number, j: number) => boolean,
): number {
  let count = 0;
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) if (!keep(i, j) && !Object.is(x[i * cols + j], 0)) count++;
  return count;
}

function checkEigh(
  k: NativeKernels,
  a: Float64Array,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  const copy = Float64Array.from(a);
  const { values, vectors } = k.eigh(a, n);
  expectIdentical(a, copy); // input untouched
  expect(values.length).toBe(n);
  expect(vectors.length).toBe(n * n);
  expectDescending(values);
  expectSignNormalised(vectors, n, n);
  const recon = k.matmul(scaleColumns(vectors, n, n, values), n, n, transpose(vectors, n, n), n);
  expect(relDiff(a, recon)).toBeLessThan(TOL);
  expect(orthogonalityError(k, vectors, n, n)).toBeLessThan(TOL);
  return { values, vectors };
}

function checkSvd(k: NativeKernels, a: Float64Array, m: number, n: number) {
  const copy = Float64Array.from(a);
  const r = k.svd(a, m, n);
  expectIdentical(a, copy);
  const kk = Math.min(m, n);
  expect(r.u.length).toBe(m * kk);
  expect(r.s.length).toBe(kk);
  expect(r.vt.length).toBe(kk * n);
  expectDescending(r.s);
  expect(r.s[kk - 1]).toBeGreaterThanOrEqual(0);
  expectSignNormalised(r.u, m, kk);
  const recon = k.matmul(scaleColumns(r.u, m, kk, r.s), m, kk, r.vt, n);
  expect(relDiff(a, recon)).toBeLessThan(TOL);
  expect(orthogonalityError(k, r.u, m, kk)).toBeLessThan(TOL);
  expect(orthogonalityError(k, transpose(r.vt, kk, n), n, kk)).toBeLessThan(TOL);
  return r;
}

function checkQr(k: NativeKernels, a: Float64Array, m: number, n: number) {
  const copy = Float64Array.from(a);
  const r = k.qr(a, m, n);
  expectIdentical(a, copy);
  const kk = Math.min(m, n);
  expect(r.q.length).toBe(m * kk);
  expect(r.r.length).toBe(kk * n);
  let negative = 0;
  for (let i = 0; i < kk; i++) if (!(r.r[i * n + i] >= 0)) negative++;
  expect(negative).toBe(0);
  expect(nonZeroOutside(r.r, kk, n, (i, j) => j >= i)).toBe(0);
  expect(relDiff(a, k.matmul(r.q, m, kk, r.r, n))).toBeLessThan(TOL);
  expect(orthogonalityError(k, r.q, m, kk)).toBeLessThan(TOL);
  return r;
}

function checkCholesky(k: NativeKernels, a: Float64Array, n: number): Float64Array {
  const copy = Float64Array.from(a);
  const l = k.cholesky(a, n);
  expectIdentical(a, copy);
  let nonPositive = 0;
  for (let i = 0; i < n; i++) if (!(l[i * n + i] > 0)) nonPositive++;
  expect(nonPositive).toBe(0);
  expect(nonZeroOutside(l, n, n, (i, j) => j <= i)).toBe(0);
  expect(relDiff(a, k.matmul(l, n, n, transpose(l, n, n), n))).toBeLessThan(TOL);
  return l;
}

/** A Aᵀ / n + shift·I: symmetric positive definite. */
function spd(k: NativeKernels, n: number, seed: number, shift = 1): Float64Array {
  const g = randn(n, n, rng(seed));
  const a = k.matmul(g, n, n, transpose(g, n, n), n);
  for (let i = 0; i < a.length; i++) a[i] /= n;
  for (let i = 0; i < n; i++) a[i * n + i] += shift;
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[j * n + i] = a[i * n + j];
  return a;
}

function symmetricRandom(n: number, seed: number): Float64Array {
  const g = randn(n, n, rng(seed));
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = 0.5 * (g[i * n + j] + g[j * n + i]);
  return a;
}

/** U diag(s) Vᵀ with random orthonormal U (m×k), V (n×k) and the given singular values. */
function withSingularValues(m: number, n: number, s: Float64Array, seed: number): Float64Array {
  const k = s.length;
  const r = rng(seed);
  const u = randomStiefel(m, k, r);
  const v = randomStiefel(n, k, r);
  return matmulJs(scaleColumns(u, m, k, s), m, k, transpose(v, n, k), n);
}

// ---------------------------------------------------------------------------------------------------

describe('loading', () => {
  it('reports the variant, Eigen 3.4 and N-API 8', () => {
    expect(info.available).toContain('baseline');
    expect(info.available).toContain(info.variant);
    expect(info.eigenVersion).toMatch(/^3\.4\./);
    expect(info.napiVersion).toBe(8);
    if (info.cpuHasAvx2 && process.env.RANKWISE_NATIVE_VARIANT !== 'baseline')
      expect(info.variant).toBe('avx2');
    if (process.arch === 'x64' && info.cpuHasAvx2) expect(info.available).toContain('avx2');
    expect(nativeKernels()!.variant).toBe(info.variant);
  });

  it('RANKWISE_NATIVE_VARIANT=baseline forces the baseline kernels', () => {
    const out = execFileSync(
      process.execPath,
      ['-e', `const a = require(${JSON.stringify(ADDON)}); console.log(a.variant, a.simd)`],
      { env: { ...process.env, RANKWISE_NATIVE_VARIANT: 'baseline' }, encoding: 'utf8' },
    );
    expect(out.split(' ')[0]).toBe('baseline');
  });

  it('loads and computes inside worker threads, next to the main thread', async () => {
    // The worker requires the .node itself (plain JS, no TypeScript loader): the addon must be
    // context-aware, i.e. one instance per thread.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.path);
      const { values } = addon.eigh(new Float64Array([2, 1, 1, 2]), 2);
      let error = '';
      try { addon.cholesky(new Float64Array([1, 0, 0, NaN]), 2); } catch (e) { error = e.code + ' ' + e.message; }
      parentPort.postMessage({ values: Array.from(values), variant: addon.variant, error });
    `;
    const runWorker = () =>
      new Promise<{ values: number[]; variant: string; error: string }>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { path: ADDON } });
        w.once('message', (m) => {
          resolve(m);
          void w.terminate();
        });
        w.once('error', reject);
      });
    const results = await Promise.all([runWorker(), runWorker()]);
    for (const r of results) {
      expect(r.values[0]).toBeCloseTo(3, 14);
      expect(r.values[1]).toBeCloseTo(1, 14);
      expect(r.variant).toBe(info.variant);
      expect(r.error).toMatch(/^RW_BAD_INPUT cholesky: input a contains NaN\/Inf/);
    }
    expect(eigh(new Float64Array([2, 1, 1, 2]), 2).values[0]).toBeCloseTo(3, 14);
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64' && info.available.includes('avx2'))(
    'has AVX instructions only in the AVX2 build (the two Eigen builds were not merged by the linker)',
    () => {
      // objdump comes with binutils, which building the addon already needs.
      const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', '-C', ADDON], {
        encoding: 'utf8',
        maxBuffer: 1 << 30,
      });
      const offenders = new Set<string>();
      let fn = '';
      let avxFunctions = 0;
      let counted = '';
      for (const line of dis.split('\n')) {
        const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
        if (head) {
          fn = head[1];
          continue;
        }
        // VEX-encoded instructions (v-prefixed mnemonics) or ymm registers: AVX and later.
        if (/^\s+[0-9a-f]+:\s+v[a-z0-9]+\s/.test(line) || line.includes('%ymm')) {
          if (!/avx2/i.test(fn)) offenders.add(fn);
          if (counted !== fn) {
            counted = fn;
            avxFunctions++;
          }
        }
      }
      expect(avxFunctions).toBeGreaterThan(10); // the AVX2 build is there and uses AVX
      expect([...offenders]).toEqual([]);
    },
  );
});

describe('independent references', () => {
  it('the Jacobi routine diagonalises', () => {
    const n = 6;
    const a = symmetricRandom(n, 1);
    const { values, vectors } = jacobiEigen(a, n);
    const recon = matmulJs(scaleColumns(vectors, n, n, values), n, n, transpose(vectors, n, n), n);
    expect(relDiff(a, recon)).toBeLessThan(1e-13);
  });
});

describe.each(variants)('$variant kernels', ({ variant, full }) => {
  const k = nativeKernels(variant as NativeVariant)!;
  // The 1024×1024 cases run once, on the variant in use.
  const itFull = (name: string, fn: () => void) => {
    if (full) it(name, fn);
  };

  describe('matmul', () => {
    it('matches a plain loop, including 1×1 and rectangular shapes', () => {
      for (const [m, kk, n] of [
        [1, 1, 1],
        [1, 5, 1],
        [3, 1, 4],
        [17, 33, 9],
        [130, 70, 200],
      ]) {
        const a = randn(m, kk, rng(m * 31 + kk));
        const b = randn(kk, n, rng(n * 7 + 3));
        const c = k.matmul(a, m, kk, b, n);
        expect(c.length).toBe(m * n);
        expect(relDiff(matmulJs(a, m, kk, b, n), c)).toBeLessThan(1e-14);
      }
    });

    itFull('1024×1024: sampled entries match dot products', () => {
      const n = 1024;
      const a = randn(n, n, rng(5));
      const b = randn(n, n, rng(6));
      const c = k.matmul(a, n, n, b, n);
      const r = rng(7);
      let worst = 0;
      for (let s = 0; s < 2000; s++) {
        const i = Math.floor(r() * n);
        const j = Math.floor(r() * n);
        let dot = 0;
        for (let p = 0; p < n; p++) dot += a[i * n + p] * b[p * n + j];
        worst = Math.max(worst, Math.abs(c[i * n + j] - dot));
      }
      expect(worst).toBeLessThan(1e-11);
    });
  });

  describe('eigh', () => {
    it('1×1, 2×2 and 3×3 by hand', () => {
      const one = checkEigh(k, new Float64Array([-4]), 1);
      expect(Array.from(one.values)).toEqual([-4]);
      expect(Array.from(one.vectors)).toEqual([1]);
      const two = checkEigh(k, new Float64Array([2, 1, 1, 2]), 2);
      expect(two.values[0]).toBeCloseTo(3, 14);
      expect(two.values[1]).toBeCloseTo(1, 14);
      const h = Math.SQRT1_2;
      expect(maxAbsDiff(two.vectors, [h, h, h, -h])).toBeLessThan(1e-15);
      const three = checkEigh(k, new Float64Array([0, 0, 0, 0, -5, 0, 0, 0, 7]), 3);
      expect(Array.from(three.values)).toEqual([7, 0, -5]);
      expect(Array.from(three.vectors)).toEqual([0, 1, 0, 0, 0, 1, 1, 0, 0]);
    });

    it('matches the Jacobi eigenvalue routine (values and sign-normalised vectors)', () => {
      for (const n of [2, 5, 12, 24]) {
        const a = symmetricRandom(n, 100 + n);
        const ours = checkEigh(k, a, n);
        const ref = jacobiEigen(a, n);
        const scale = frobenius(a);
        expect(maxAbsDiff(ours.values, ref.values)).toBeLessThan(1e-13 * scale);
        // random spectra are well separated: eigenvectors are determined up to sign
        for (let j = 0; j < n; j++) {
          const i = argmaxAbsColumn(ref.vectors, n, n, j);
          const sign = ref.vectors[i * n + j] < 0 ? -1 : 1;
          for (let r = 0; r < n; r++)
            expect(Math.abs(ours.vectors[r * n + j] - sign * ref.vectors[r * n + j])).toBeLessThan(1e-11);
        }
      }
    });

    it('random symmetric matrices, 64 and 257', () => {
      for (const n of [64, 257]) checkEigh(k, symmetricRandom(n, n), n);
    });

    it('ill-conditioned: eigenvalues 1 … 1e-12 (and negative), recovered to ε‖A‖', () => {
      const n = 120;
      const lambda = logSpectrum(n, 1, 1e-12);
      for (let i = 0; i < n; i += 3) lambda[i] = -lambda[i];
      const a = symmetricWithSpectrum(randomOrthogonal(n, rng(3)), lambda, n);
      const { values } = checkEigh(k, a, n);
      const sorted = Float64Array.from(lambda).sort((x, y) => y - x);
      expect(maxAbsDiff(values, sorted)).toBeLessThan(1e-14 * n);
    });

    it('repeated and clustered eigenvalues keep orthonormal vectors', () => {
      const n = 40;
      const lambda = Float64Array.from({ length: n }, (_, i) => (i < 20 ? 1 : i < 30 ? 1 + 1e-13 * i : -2));
      checkEigh(k, symmetricWithSpectrum(randomOrthogonal(n, rng(9)), lambda, n), n);
      const e = checkEigh(k, identity(n), n);
      expect(Array.from(e.values)).toEqual(Array.from({ length: n }, () => 1));
    });

    it('symmetrises a slightly asymmetric input', () => {
      const n = 30;
      const a = symmetricRandom(n, 77);
      const skewed = Float64Array.from(a);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < i; j++) {
          skewed[i * n + j] += 1e-9;
          skewed[j * n + i] -= 1e-9;
        }
      expect(maxAbsDiff(k.eigh(skewed, n).values, k.eigh(a, n).values)).toBeLessThan(1e-13);
    });

    it('extreme scales (1e±300): results scale with the input', () => {
      const n = 20;
      const a = symmetricRandom(n, 5);
      const g = randn(30, n, rng(6));
      const e1 = k.eigh(a, n).values;
      const s1 = k.svd(g, 30, n).s;
      for (const scale of [1e300, 1e-300]) {
        // (the reconstruction checks would overflow here: compare with the unscaled results instead)
        const e2 = k.eigh(
          a.map((x) => x * scale),
          n,
        );
        expect(
          maxAbsDiff(
            e2.values.map((v) => v / scale),
            e1,
          ),
        ).toBeLessThan(1e-13 * frobenius(a));
        expect(orthogonalityError(k, e2.vectors, n, n)).toBeLessThan(TOL);
        const s2 = k.svd(
          g.map((x) => x * scale),
          30,
          n,
        );
        expect(
          maxAbsDiff(
            s2.s.map((v) => v / scale),
            s1,
          ),
        ).toBeLessThan(1e-13 * frobenius(g));
        expect(orthogonalityError(k, s2.u, 30, n)).toBeLessThan(TOL);
      }
    });

    it('is deterministic', () => {
      const a = symmetricRandom(50, 4);
      const x = k.eigh(a, 50);
      const y = k.eigh(a, 50);
      expectIdentical(y.values, x.values);
      expectIdentical(y.vectors, x.vectors);
    });

    itFull('1024×1024', () => {
      checkEigh(k, spd(k, 1024, 11, 0.01), 1024);
    });
  });

  describe('svd', () => {
    it('1×1, a row, a column and diag by hand', () => {
      const one = checkSvd(k, new Float64Array([-3]), 1, 1);
      expect(Array.from(one.s)).toEqual([3]);
      expect(Array.from(one.u)).toEqual([1]);
      expect(Array.from(one.vt)).toEqual([-1]);
      const row = checkSvd(k, new Float64Array([3, 4]), 1, 2);
      expect(row.s[0]).toBeCloseTo(5, 14);
      const col = checkSvd(k, new Float64Array([0, -6, 8]), 3, 1);
      expect(col.s[0]).toBeCloseTo(10, 14);
      expect(maxAbsDiff(col.u, [0, -0.6, 0.8])).toBeLessThan(1e-15);
      expect(col.vt[0]).toBeCloseTo(1, 15);
      const d = checkSvd(k, new Float64Array([0, 2, 0, -5, 0, 0]), 2, 3);
      expect(Array.from(d.s)).toEqual([5, 2]);
    });

    it('singular values match the Jacobi eigenvalues of AᵀA', () => {
      for (const [m, n] of [
        [6, 4],
        [4, 9],
        [15, 15],
      ]) {
        const a = randn(m, n, rng(m * 100 + n));
        const { s } = checkSvd(k, a, m, n);
        const gram =
          m >= n ? matmulJs(transpose(a, m, n), n, m, a, n) : matmulJs(a, m, n, transpose(a, m, n), m);
        const ev = jacobiEigen(gram, Math.min(m, n)).values;
        expect(
          maxAbsDiff(
            s,
            Array.from(ev, (x) => Math.sqrt(Math.max(x, 0))),
          ),
        ).toBeLessThan(1e-12);
      }
    });

    it('square, tall and wide random matrices', () => {
      for (const [m, n] of [
        [2, 2],
        [7, 7],
        [100, 100],
        [300, 40],
        [40, 300],
        [1, 50],
        [50, 1],
        [257, 256],
      ]) {
        checkSvd(k, randn(m, n, rng(m * 1000 + n)), m, n);
      }
    });

    it('ill-conditioned: singular values 1 … 1e-12, square, tall and wide', () => {
      for (const [m, n] of [
        [150, 150],
        [200, 90],
        [90, 200],
      ]) {
        const s = logSpectrum(Math.min(m, n), 1, 1e-12);
        const a = withSingularValues(m, n, s, m + n);
        const r = checkSvd(k, a, m, n);
        expect(maxAbsDiff(r.s, s)).toBeLessThan(1e-14 * Math.min(m, n));
      }
    });

    it('rank-deficient and zero matrices', () => {
      const s = new Float64Array(60);
      for (let i = 0; i < 10; i++) s[i] = 10 - i;
      const r = checkSvd(k, withSingularValues(80, 60, s, 5), 80, 60);
      expect(Math.max(...r.s.subarray(10))).toBeLessThan(1e-13);
      const z = checkSvd(k, new Float64Array(12), 3, 4);
      expect(Array.from(z.s)).toEqual([0, 0, 0]);
    });

    it('is deterministic', () => {
      const a = randn(40, 30, rng(8));
      const x = k.svd(a, 40, 30);
      const y = k.svd(a, 40, 30);
      expectIdentical(y.u, x.u);
      expectIdentical(y.s, x.s);
      expectIdentical(y.vt, x.vt);
    });

    itFull('1024×1024', () => {
      checkSvd(k, randn(1024, 1024, rng(12)), 1024, 1024);
    });
  });

  describe('qr', () => {
    it('1×1 and small cases by hand', () => {
      const one = checkQr(k, new Float64Array([-2]), 1, 1);
      expect(Array.from(one.q)).toEqual([-1]);
      expect(Array.from(one.r)).toEqual([2]);
      const col = checkQr(k, new Float64Array([3, 4]), 2, 1);
      expect(maxAbsDiff(col.q, [0.6, 0.8])).toBeLessThan(1e-15);
      expect(col.r[0]).toBeCloseTo(5, 14);
    });

    it('matches Gram–Schmidt (the thin QR with diag(R) > 0 is unique)', () => {
      for (const [m, n] of [
        [5, 5],
        [30, 12],
        [200, 64],
      ]) {
        const a = randn(m, n, rng(m + 7 * n));
        const ours = checkQr(k, a, m, n);
        const ref = gramSchmidtQr(a, m, n);
        expect(maxAbsDiff(ours.q, ref.q)).toBeLessThan(1e-11);
        expect(maxAbsDiff(ours.r, ref.r)).toBeLessThan(1e-11 * frobenius(a));
      }
    });

    it('square, tall and wide random matrices', () => {
      for (const [m, n] of [
        [2, 2],
        [100, 100],
        [300, 40],
        [40, 300],
        [1, 50],
        [50, 1],
      ]) {
        checkQr(k, randn(m, n, rng(m * 13 + n)), m, n);
      }
    });

    it('ill-conditioned and rank-deficient', () => {
      checkQr(k, withSingularValues(150, 150, logSpectrum(150, 1, 1e-12), 21), 150, 150);
      checkQr(k, withSingularValues(200, 80, logSpectrum(80, 1, 1e-12), 22), 200, 80);
      const s = new Float64Array(30);
      s[0] = 1;
      s[1] = 0.5;
      checkQr(k, withSingularValues(50, 30, s, 23), 50, 30);
      checkQr(k, new Float64Array(20), 5, 4);
    });

    itFull('1024×1024', () => {
      checkQr(k, randn(1024, 1024, rng(13)), 1024, 1024);
    });
  });

  describe('cholesky', () => {
    it('1×1 and 2×2 by hand', () => {
      expect(Array.from(checkCholesky(k, new Float64Array([9]), 1))).toEqual([3]);
      const l = checkCholesky(k, new Float64Array([4, 2, 2, 5]), 2);
      expect(Array.from(l)).toEqual([2, 0, 1, 2]);
    });

    it('matches Cholesky–Banachiewicz', () => {
      for (const n of [3, 20, 100]) {
        const a = spd(k, n, n + 40);
        expect(maxAbsDiff(checkCholesky(k, a, n), choleskyJs(a, n))).toBeLessThan(1e-13 * Math.sqrt(n));
      }
    });

    it('ill-conditioned: eigenvalues 1 … 1e-12', () => {
      const n = 150;
      checkCholesky(k, symmetricWithSpectrum(randomOrthogonal(n, rng(31)), logSpectrum(n, 1, 1e-12), n), n);
    });

    it('not positive definite: a clear bad-input error suggesting regularisation', () => {
      const cases: [Float64Array, number][] = [
        [new Float64Array([1, 2, 2, 1]), 2], // indefinite
        [new Float64Array([0]), 1],
        [new Float64Array([-1]), 1],
        [new Float64Array([1, 1, 1, 1]), 2], // singular: exactly semi-definite
        [
          symmetricWithSpectrum(
            randomOrthogonal(20, rng(2)),
            logSpectrum(20, 1, 1e-3).map((x, i) => (i === 19 ? -1e-3 : x)),
            20,
          ),
          20,
        ],
      ];
      for (const [a, n] of cases) {
        let err: unknown;
        try {
          k.cholesky(a, n);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(NativeKernelError);
        expect((err as NativeKernelError).kind).toBe('bad-input');
        expect((err as NativeKernelError).message).toMatch(/^cholesky: the matrix is not positive definite/);
        expect((err as NativeKernelError).message).toMatch(/regularise/);
      }
    });

    itFull('1024×1024', () => {
      checkCholesky(k, spd(k, 1024, 14), 1024);
    });
  });

  describe('solveTriangular', () => {
    /** n×n with a well-conditioned triangle and garbage in the other one (which must not be read). */
    function triangular(n: number, lower: boolean, seed: number): Float64Array {
      const t = randn(n, n, rng(seed));
      for (let i = 0; i < n; i++) {
        t[i * n + i] = (t[i * n + i] >= 0 ? 1 : -1) * (2 + Math.abs(t[i * n + i]));
        for (let j = 0; j < n; j++)
          if ((lower && j > i) || (!lower && j < i)) t[i * n + j] = 1e6 * (i + 1) - j;
        for (let j = 0; j < n; j++) if ((lower && j < i) || (!lower && j > i)) t[i * n + j] /= Math.sqrt(n);
      }
      return t;
    }
    /** The triangle of t that is meant, zeros elsewhere. */
    function clean(t: Float64Array, n: number, lower: boolean): Float64Array {
      return t.map((v, idx) => {
        const i = Math.floor(idx / n);
        const j = idx % n;
        return (lower ? j <= i : j >= i) ? v : 0;
      });
    }

    it('matches substitution and the definition, lower/upper × plain/transposed', () => {
      for (const n of [1, 2, 9, 120]) {
        for (const cols of [1, 3, 50]) {
          for (const lower of [true, false]) {
            for (const transposeT of [false, true]) {
              const t = triangular(n, lower, n * 10 + cols);
              const b = randn(n, cols, rng(n + cols));
              const tCopy = Float64Array.from(t);
              const bCopy = Float64Array.from(b);
              const x = k.solveTriangular(t, n, b, cols, { lower, transpose: transposeT });
              expectIdentical(t, tCopy);
              expectIdentical(b, bCopy);
              expect(maxAbsDiff(x, substitute(t, n, b, cols, lower, transposeT))).toBeLessThan(1e-12);
              const tc = clean(t, n, lower);
              const op = transposeT ? transpose(tc, n, n) : tc;
              expect(relDiff(b, matmulJs(op, n, n, x, cols))).toBeLessThan(TOL);
            }
          }
        }
      }
    });

    it('transpose defaults to false', () => {
      const t = triangular(6, true, 3);
      const b = randn(6, 2, rng(4));
      expect(k.solveTriangular(t, 6, b, 2, { lower: true })).toEqual(
        k.solveTriangular(t, 6, b, 2, { lower: true, transpose: false }),
      );
    });

    it('with a Cholesky factor: L Lᵀ X = B', () => {
      const n = 200;
      const a = spd(k, n, 50);
      const l = k.cholesky(a, n);
      const b = randn(n, 4, rng(51));
      const y = k.solveTriangular(l, n, b, 4, { lower: true });
      const x = k.solveTriangular(l, n, y, 4, { lower: true, transpose: true });
      expect(relDiff(b, matmulJs(a, n, n, x, 4))).toBeLessThan(TOL);
    });

    it('a zero on the diagonal is a bad-input error naming the row', () => {
      const t = new Float64Array([1, 0, 0, 2, 0, 0, 3, 4, 5]);
      expect(() => k.solveTriangular(t, 3, new Float64Array(3), 1, { lower: true })).toThrow(
        /^solveTriangular: the triangular matrix is singular \(zero on the diagonal at row 1\)/,
      );
    });

    it('an overflowing solution is a bad-input error', () => {
      const n = 400;
      const t = new Float64Array(n * n);
      for (let i = 0; i < n; i++) {
        t[i * n + i] = 1e-300;
        if (i > 0) t[i * n + i - 1] = 1;
      }
      const b = new Float64Array(n).fill(1);
      let err: unknown;
      try {
        k.solveTriangular(t, n, b, 1, { lower: true });
      } catch (e) {
        err = e;
      }
      expect((err as NativeKernelError).kind).toBe('bad-input');
      expect((err as Error).message).toMatch(/^solveTriangular: the solution overflowed/);
    });
  });
});

// ---------------------------------------------------------------------------------------------------

describe('argument errors', () => {
  const sq = (n: number) => Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 2 : 0.1));
  /** Every function, called with valid arguments where `bad` is not set. */
  const calls: Record<string, (bad: { a?: unknown; b?: unknown; n?: unknown }) => unknown> = {
    eigh: ({ a = sq(3), n = 3 }) => eigh(a as Float64Array, n as number),
    svd: ({ a = sq(3), n = 3 }) => svd(a as Float64Array, n as number, 3),
    qr: ({ a = sq(3), n = 3 }) => qr(a as Float64Array, n as number, 3),
    cholesky: ({ a = sq(3), n = 3 }) => cholesky(a as Float64Array, n as number),
    solveTriangular: ({ a = sq(3), b = new Float64Array(6), n = 3 }) =>
      solveTriangular(a as Float64Array, n as number, b as Float64Array, 2, { lower: true }),
    matmul: ({ a = sq(3), b = new Float64Array(6), n = 3 }) =>
      matmul(a as Float64Array, n as number, 3, b as Float64Array, 2),
  };
  const firstArg: Record<string, string> = {
    eigh: 'a',
    svd: 'a',
    qr: 'a',
    cholesky: 'a',
    solveTriangular: 't',
    matmul: 'a',
  };

  function thrown(fn: () => unknown): NativeKernelError {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(NativeKernelError);
      return e as NativeKernelError;
    }
    throw new Error('expected a throw');
  }

  it.each(Object.keys(calls))('%s: valid arguments work', (name) => {
    expect(() => calls[name]({})).not.toThrow();
  });

  it.each(Object.keys(calls))('%s: NaN or ±Inf input is a bad-input error naming the function', (name) => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const a = sq(3);
      a[5] = bad;
      const e = thrown(() => calls[name]({ a }));
      expect(e.kind).toBe('bad-input');
      expect(e.message).toMatch(
        new RegExp(`^${name}: input ${firstArg[name]} contains NaN/Inf \\(first at row 1, column 2`),
      );
    }
  });

  it.each(['solveTriangular', 'matmul'])('%s: NaN in the second matrix too', (name) => {
    const b = new Float64Array(6);
    b[3] = NaN;
    const e = thrown(() => calls[name]({ b }));
    expect(e.kind).toBe('bad-input');
    expect(e.message).toMatch(new RegExp(`^${name}: input b contains NaN/Inf`));
  });

  it.each(Object.keys(calls))(
    '%s: wrong length, wrong type and bad dimensions are internal errors',
    (name) => {
      const wrongLength = thrown(() => calls[name]({ a: new Float64Array(8) }));
      expect(wrongLength.kind).toBe('internal');
      expect(wrongLength.message).toMatch(
        new RegExp(`^${name}: ${firstArg[name]} has length 8, expected 3×3 = 9`),
      );
      for (const a of [new Float32Array(9), Array.from(sq(3)), null, 'x']) {
        const e = thrown(() => calls[name]({ a }));
        expect(e.kind).toBe('internal');
        expect(e.message).toBe(`${name}: ${firstArg[name]} must be a Float64Array`);
      }
      for (const n of [0, -1, 2.5, NaN, Infinity, 2 ** 40]) {
        const e = thrown(() => calls[name]({ n }));
        expect(e.kind).toBe('internal');
        expect(e.message).toMatch(new RegExp(`^${name}: \\w+ must be a positive integer`));
      }
      expect(thrown(() => calls[name]({ n: '3' })).message).toMatch(/must be a number/);
    },
  );

  it('solveTriangular: options are checked', () => {
    const t = sq(2);
    const b = new Float64Array(2);
    const bad = (o: unknown) => thrown(() => solveTriangular(t, 2, b, 1, o as { lower: boolean }));
    expect(bad(undefined).message).toBe('solveTriangular: options must be an object');
    expect(bad({}).message).toBe('solveTriangular: options.lower must be a boolean');
    expect(bad({ lower: 1 }).message).toBe('solveTriangular: options.lower must be a boolean');
    expect(bad({ lower: true, transpose: 'yes' }).message).toBe(
      'solveTriangular: options.transpose must be a boolean',
    );
  });

  it('a missing argument', () => {
    const e = thrown(() => (eigh as unknown as (a: Float64Array) => unknown)(sq(2)));
    expect(e.message).toBe('eigh: n must be a number (a positive integer)');
    const raw = nativeKernels() as unknown as { eigh?: unknown };
    expect(raw.eigh).toBeTypeOf('function');
  });

  it('a Float64Array view at an offset is read from its offset', () => {
    const buf = new Float64Array([99, 4, 2, 2, 5, 99]);
    const view = buf.subarray(1, 5);
    expect(Array.from(cholesky(view, 2))).toEqual([2, 0, 1, 2]);
  });
});
