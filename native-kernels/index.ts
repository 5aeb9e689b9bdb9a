/**
 * rankwise-native: small dense float64 linear algebra in C++ (Eigen 3.4 behind node-addon-api / N-API 8),
 * for the d×d problems of the compression methods (d up to about 1024). Large tensor work belongs to
 * onnxruntime, not here.
 *
 * Conventions, for every function:
 * - matrices are **row-major** `Float64Array`s: element (i, j) of an r×c matrix is at `i * c + j`;
 * - inputs are never modified; every result is a new `Float64Array`;
 * - dimensions are positive integers and every array's length must equal the product of its dimensions;
 * - every input value must be finite.
 *
 * Errors are `NativeKernelError`s whose message starts with the function's name (the package knows
 * nothing of the app: `main/methods/kernels.ts` maps them onto the engine's error kinds):
 * - kind `'bad-input'` when the values are the problem (NaN/Inf, which usually means a model with NaN
 *   weights or activations; a matrix that is not positive definite; a singular triangular matrix);
 * - kind `'internal'` for a caller's mistake (wrong array type, wrong length, bad dimension) or a
 *   failure inside the solver (no convergence, out of memory), and when the addon cannot be loaded.
 *
 * The addon is built by `npm ci` (node-gyp, Debian `libeigen3-dev` headers) into `build/Release/`. It
 * holds two builds of the kernels, baseline x86-64 and AVX2+FMA, and picks AVX2 at load when the CPU
 * has it (`RANKWISE_NATIVE_VARIANT=baseline` forces the baseline). It loads on first use, in any thread.
 */
import { createRequire } from 'node:module';

/** 'bad-input': the values are the problem; 'internal': a caller's mistake or a solver failure. */
export type NativeErrorKind = 'bad-input' | 'internal';

export class NativeKernelError extends Error {
  readonly kind: NativeErrorKind;

  constructor(kind: NativeErrorKind, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'NativeKernelError';
    this.kind = kind;
  }
}

/** Which build of the Eigen kernels runs. */
export type NativeVariant = 'avx2' | 'baseline';

export interface NativeInfo {
  /** The kernels in use: 'avx2' (AVX2 + FMA) or 'baseline' (the target's default ISA, SSE2 on x86-64). */
  variant: NativeVariant;
  /** Eigen's version, e.g. '3.4.0'. */
  eigenVersion: string;
  /** Eigen's report of the SIMD instruction sets the chosen kernels use, e.g. 'AVX SSE, SSE2, ... '. */
  simd: string;
  /** Whether the CPU (and OS) support AVX2 and FMA. */
  cpuHasAvx2: boolean;
  /** The variants this machine can run (always includes 'baseline'). */
  available: NativeVariant[];
  /** The N-API version the addon was built for. */
  napiVersion: number;
}

/** Symmetric eigendecomposition A = V diag(values) Vᵀ. */
export interface EighResult {
  /** The n eigenvalues, in descending order. */
  values: Float64Array;
  /**
   * n×n row-major; column j (elements `i * n + j`) is the unit eigenvector of `values[j]`, its
   * largest-magnitude component positive (the first one on exact ties).
   */
  vectors: Float64Array;
}

/** Thin singular value decomposition A = U diag(s) Vᵀ with k = min(m, n). */
export interface SvdResult {
  /** m×k row-major, orthonormal columns; each column's largest-magnitude component is positive. */
  u: Float64Array;
  /** The k singular values, descending, ≥ 0. */
  s: Float64Array;
  /** k×n row-major (Vᵀ): row j is the right singular vector paired with `s[j]` and column j of `u`. */
  vt: Float64Array;
}

/** Thin QR decomposition A = Q R with k = min(m, n). */
export interface QrResult {
  /** m×k row-major, orthonormal columns. */
  q: Float64Array;
  /** k×n row-major, upper triangular (trapezoidal when n > m), with diag(R) ≥ 0. */
  r: Float64Array;
}

export interface SolveTriangularOptions {
  /** true: T is lower triangular (only its lower triangle is read); false: upper. */
  lower: boolean;
  /** true: solve Tᵀ X = B instead of T X = B. Default false. */
  transpose?: boolean;
}

/** The kernel functions of one variant (see `nativeKernels`). */
export interface NativeKernels {
  variant: NativeVariant;
  eigh(a: Float64Array, n: number): EighResult;
  svd(a: Float64Array, m: number, n: number): SvdResult;
  qr(a: Float64Array, m: number, n: number): QrResult;
  cholesky(a: Float64Array, n: number): Float64Array;
  solveTriangular(
    t: Float64Array,
    n: number,
    b: Float64Array,
    cols: number,
    options: SolveTriangularOptions,
  ): Float64Array;
  matmul(a: Float64Array, m: number, k: number, b: Float64Array, n: number): Float64Array;
}

/** What the .node file exports (src/addon.cc). */
interface AddonKernels extends NativeKernels {
  eigenVersion: string;
  simd: string;
}
interface Addon extends AddonKernels {
  variants: Partial<Record<NativeVariant, AddonKernels>>;
  cpuHasAvx2: boolean;
  napiVersion: number;
}

const ADDON_PATH = './build/Release/rankwise_native.node';
let addon: Addon | undefined;

function load(): Addon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    addon = require(ADDON_PATH) as Addon;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new NativeKernelError(
      'internal',
      `rankwise-native: cannot load native-kernels/build/Release/rankwise_native.node (${why}); ` +
        'it is built by `npm ci`, which needs the Eigen headers (Debian/Ubuntu: apt-get install libeigen3-dev)',
      e,
    );
  }
  return addon;
}

/** Maps the addon's error codes (src/addon.cc) to NativeKernelError kinds. */
function wrapError(e: unknown): NativeKernelError {
  if (e instanceof NativeKernelError) return e;
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  const kind: NativeErrorKind = code === 'RW_BAD_INPUT' ? 'bad-input' : 'internal';
  const message = e instanceof Error ? e.message : `rankwise-native: ${String(e)}`;
  return new NativeKernelError(kind, message, e);
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw wrapError(e);
  }
}

function wrapKernels(k: AddonKernels): NativeKernels {
  return {
    variant: k.variant,
    eigh: (a, n) => call(() => k.eigh(a, n)),
    svd: (a, m, n) => call(() => k.svd(a, m, n)),
    qr: (a, m, n) => call(() => k.qr(a, m, n)),
    cholesky: (a, n) => call(() => k.cholesky(a, n)),
    solveTriangular: (t, n, b, cols, options) => call(() => k.solveTriangular(t, n, b, cols, options)),
    matmul: (a, m, k2, b, n) => call(() => k.matmul(a, m, k2, b, n)),
  };
}

/**
 * Symmetric eigendecomposition (Eigen's SelfAdjointEigenSolver: Householder tridiagonalisation, then
 * implicit symmetric QL/QR).
 *
 * @param a n×n row-major; it is symmetrised as (A + Aᵀ)/2, so a slightly asymmetric Gram matrix is fine.
 * @returns eigenvalues in descending order and the n×n row-major matrix whose column j is the unit
 *   eigenvector of `values[j]`, sign-normalised (largest-magnitude component positive).
 */
export function eigh(a: Float64Array, n: number): EighResult {
  return call(() => load().eigh(a, n));
}

/**
 * Thin SVD (Eigen's BDCSVD, divide and conquer with one-sided Jacobi on small blocks; an a-posteriori
 * check falls back to JacobiSVD). Backward stable: ‖A − U S Vᵀ‖ ≈ ε‖A‖ and U, V orthonormal to ≈ ε√k,
 * whatever the conditioning.
 *
 * @param a m×n row-major.
 * @returns k = min(m, n): `u` m×k, `s` k descending, `vt` k×n, all row-major; signs are fixed so that
 *   each column of U has its largest-magnitude component positive (the row of Vᵀ follows).
 */
export function svd(a: Float64Array, m: number, n: number): SvdResult {
  return call(() => load().svd(a, m, n));
}

/**
 * Thin Householder QR.
 *
 * @param a m×n row-major.
 * @returns k = min(m, n): `q` m×k with orthonormal columns and `r` k×n upper triangular, row-major, with
 *   diag(R) ≥ 0 (unique, and continuous in A, when A has full column rank — what a QR retraction needs).
 */
export function qr(a: Float64Array, m: number, n: number): QrResult {
  return call(() => load().qr(a, m, n));
}

/**
 * Cholesky factorisation A = L Lᵀ.
 *
 * @param a n×n row-major, symmetric positive definite (symmetrised as (A + Aᵀ)/2).
 * @returns L, n×n row-major, lower triangular (zeros above the diagonal), positive diagonal.
 * @throws NativeKernelError 'bad-input' when A is not positive definite (regularise it, e.g. A + εI).
 */
export function cholesky(a: Float64Array, n: number): Float64Array {
  return call(() => load().cholesky(a, n));
}

/**
 * Triangular solve: X with T X = B, or Tᵀ X = B with `transpose: true`.
 *
 * @param t n×n row-major; only the triangle named by `options.lower` (and the diagonal) is read.
 * @param b n×cols row-major right-hand sides.
 * @returns X, n×cols row-major.
 * @throws NativeKernelError 'bad-input' when T has a zero on its diagonal or the solution overflows.
 */
export function solveTriangular(
  t: Float64Array,
  n: number,
  b: Float64Array,
  cols: number,
  options: SolveTriangularOptions,
): Float64Array {
  return call(() => load().solveTriangular(t, n, b, cols, options));
}

/**
 * Small dense product C = A B (Eigen's GEMM, single thread).
 *
 * @param a m×k row-major.
 * @param b k×n row-major.
 * @returns C, m×n row-major.
 */
export function matmul(a: Float64Array, m: number, k: number, b: Float64Array, n: number): Float64Array {
  return call(() => load().matmul(a, m, k, b, n));
}

/** Which kernels run, and what the build offers. Loads the addon. */
export function nativeInfo(): NativeInfo {
  const a = load();
  const available = (['baseline', 'avx2'] as const).filter((v) => a.variants[v] !== undefined);
  return {
    variant: a.variant,
    eigenVersion: a.eigenVersion,
    simd: a.simd,
    cpuHasAvx2: a.cpuHasAvx2,
    available,
    napiVersion: a.napiVersion,
  };
}

/**
 * The kernels of one variant, for tests and benchmarks that compare variants; `undefined` when this CPU
 * cannot run it (or the build lacks it). Without an argument: the variant in use.
 */
export function nativeKernels(variant?: NativeVariant): NativeKernels | undefined {
  const a = load();
  const k = variant === undefined ? a : a.variants[variant];
  return k === undefined ? undefined : wrapKernels(k);
}
