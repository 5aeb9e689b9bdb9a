/**
 * Riemannian Adam on the orthogonal group / Stiefel manifold (methods.md §8, "Direct Riemannian
 * alternative"): the Euclidean gradient is projected to the tangent space at P (ξ = G − P·sym(PᵀG)), Adam
 * moments are kept on projected gradients, the step is projected again, and a QR retraction with a sign fix
 * (diag R ≥ 0, native kernels) brings P back onto the manifold, so PᵀP = I holds to rounding after every step.
 */
import { matmul, qr } from './kernels.ts';
import { transpose } from './linalg.ts';

/** P·sym(PᵀX) subtracted from X: the tangent-space projection at P (n×k, orthonormal columns). */
export function projectTangent(p: Float64Array, x: Float64Array, n: number, k: number): Float64Array {
  const ptx = matmul(transpose(p, n, k), k, n, x, k);
  const sym = new Float64Array(k * k);
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++) sym[i * k + j] = 0.5 * (ptx[i * k + j] + ptx[j * k + i]);
  const correction = matmul(p, n, k, sym, k);
  return x.map((v, i) => v - correction[i]);
}

/** The Q factor of P − step, sign-fixed: the QR retraction. */
export function retract(p: Float64Array, step: Float64Array, n: number, k: number): Float64Array {
  return qr(
    p.map((v, i) => v - step[i]),
    n,
    k,
  ).q;
}

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** One point on St(n, k) with its Adam state. */
export class StiefelAdam {
  private m: Float64Array;
  private v: Float64Array;
  private t = 0;

  constructor(
    public p: Float64Array,
    readonly n: number,
    readonly k: number,
    private readonly opts: AdamOptions,
  ) {
    this.m = new Float64Array(n * k);
    this.v = new Float64Array(n * k);
  }

  /** One step along the Euclidean gradient `g` (n×k) with learning rate `lr` (defaults to the option's). */
  step(g: Float64Array, lr = this.opts.lr): void {
    const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = this.opts;
    const { n, k } = this;
    const xi = projectTangent(this.p, g, n, k);
    this.t += 1;
    // Moments transported by projection onto the new tangent space (methods.md §8.2).
    this.m = projectTangent(this.p, this.m, n, k);
    for (let i = 0; i < xi.length; i++) {
      this.m[i] = beta1 * this.m[i] + (1 - beta1) * xi[i];
      this.v[i] = beta2 * this.v[i] + (1 - beta2) * xi[i] * xi[i];
    }
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    const raw = this.m.map((mi, i) => (lr * (mi / c1)) / (Math.sqrt(this.v[i] / c2) + eps));
    this.p = retract(this.p, projectTangent(this.p, raw, n, k), n, k);
  }
}

/** ‖PᵀP − I‖_max. */
export function orthonormalityError(p: Float64Array, n: number, k: number): number {
  const ptp = matmul(transpose(p, n, k), k, n, p, k);
  let e = 0;
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++) e = Math.max(e, Math.abs(ptp[i * k + j] - (i === j ? 1 : 0)));
  return e;
}

/** Cosine schedule from lr down to 0 over `total` steps. */
export function cosineLr(lr: number, step: number, total: number): number {
  return 0.5 * lr * (1 + Math.cos((Math.PI * step) / total));
}
