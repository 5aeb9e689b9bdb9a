/**
 * The free parameters of a layer's fine-tuning (finetune.ts): the factor pairs (A, B) of the sides being
 * trained, packed into one flat vector for the optimiser, with the chain rule from the layer gradient's
 * ∂ℒ/∂M to ∂ℒ/∂A and ∂ℒ/∂B.
 */
import { matmul, svd } from './kernels.ts';
import { transpose } from './linalg.ts';
import type { FactorPair, LayerCompression } from '../core/kv.ts';
import type { LayerGradResult, ThinGradResult } from '../runtime/layer-grad.ts';
import { pairProduct } from '../runtime/projection.ts';

export type Side = 'keys' | 'values';

/**
 * ∂ℒ/∂A and ∂ℒ/∂B (d×r each) from G = ∂ℒ/∂M (d×d) at M = A·Bᵀ. The gradient graph's G is indexed like M
 * in k̂ = k·M (row vectors: k̂_j = Σ_i k_i M_ij), so dℒ = ⟨G, dM⟩ = ⟨G, dA·Bᵀ⟩ + ⟨G, A·dBᵀ⟩
 * = ⟨G·B, dA⟩ + ⟨Gᵀ·A, dB⟩.
 */
export function factorGradients(
  g: Float64Array,
  a: Float64Array,
  b: Float64Array,
  d: number,
  r: number,
): { a: Float64Array; b: Float64Array } {
  return { a: matmul(g, d, d, b, r), b: matmul(transpose(g, d, d), d, d, a, r) };
}

/**
 * The same M = A·Bᵀ, refactored as A = U_r·√Σ_r, B = V_r·√Σ_r. A KQ-SVD pair carries the keys' scale in
 * A (≈ 1/‖k‖) and its inverse in B, so one learning rate would move one factor by a huge fraction and the
 * other not at all; balanced factors have equal column norms, √σ, and entries of about 1/√d for a
 * projector whatever the activations' scale.
 */
export function balancedPair(pair: FactorPair, d: number): FactorPair {
  const r = pair.rank;
  const { u, s, vt } = svd(pairProduct(pair.a, pair.b, d, r), d, d);
  const a = new Float64Array(d * r);
  const b = new Float64Array(d * r);
  for (let j = 0; j < r; j++) {
    const root = Math.sqrt(s[j]);
    for (let i = 0; i < d; i++) {
      a[i * r + j] = u[i * d + j] * root;
      b[i * r + j] = vt[j * d + i] * root;
    }
  }
  return { a, b, rank: r };
}

/** Where one head's pair of one side lives in the flat parameter vector. */
interface Slot {
  side: Side;
  head: number;
  rank: number;
  /** Offset of A (d×r); B follows it. */
  at: number;
}

/**
 * The trained sides' pairs of a layer compression, balanced and packed as [A, B] per head, keys first.
 * A side not trained keeps the start's pairs (null stays null).
 */
export class TrainableFactors {
  readonly theta: Float64Array;
  /** Per-entry step scale: the RMS entry of the pair's start, so the learning rate is relative. */
  readonly scale: Float64Array;
  private readonly slots: Slot[] = [];
  /** M = A·Bᵀ of a side kept as it started (null when that side is uncompressed). */
  private readonly fixed: Record<Side, Float64Array[] | null>;
  /** The sides trained: those asked for that the start compresses (an uncompressed side stays so). */
  readonly sides: readonly Side[];

  constructor(
    private readonly start: LayerCompression,
    private readonly d: number,
    train: readonly Side[],
  ) {
    const sides = train.filter((side) => start[side] !== null);
    this.sides = sides;
    const pairs: FactorPair[] = [];
    for (const side of sides) {
      for (const [head, pair] of start[side]!.entries()) {
        const at = pairs.reduce((n, p) => n + 2 * d * p.rank, 0);
        this.slots.push({ side, head, rank: pair.rank, at });
        // thin-space keys are trained as they are: their coordinates are what the thin RoPE rotates, and a
        // refactoring would mix its planes
        const asIs = side === 'keys' && start.keySpace === 'thin-rope';
        pairs.push(asIs ? { a: pair.a.slice(), b: pair.b.slice(), rank: pair.rank } : balancedPair(pair, d));
      }
    }
    const size = pairs.reduce((n, p) => n + 2 * d * p.rank, 0);
    this.theta = new Float64Array(size);
    this.scale = new Float64Array(size);
    for (const [n, { at }] of this.slots.entries()) {
      const { a, b } = pairs[n];
      this.theta.set(a, at);
      this.theta.set(b, at + a.length);
      let sq = 0;
      for (let i = 0; i < a.length; i++) sq += a[i] * a[i] + b[i] * b[i];
      // a zero pair (a rank-deficient fit) still gets the step of a projector's entries
      const rms = Math.sqrt(sq / (2 * a.length)) || 1 / Math.sqrt(d);
      this.scale.fill(rms, at, at + 2 * a.length);
    }
    const fixedSide = (side: Side) =>
      sides.includes(side) ? null : (start[side]?.map((p) => pairProduct(p.a, p.b, d, p.rank)) ?? null);
    this.fixed = { keys: fixedSide('keys'), values: fixedSide('values') };
  }

  private factors(theta: Float64Array, s: Slot): { a: Float64Array; b: Float64Array } {
    const n = this.d * s.rank;
    return { a: theta.subarray(s.at, s.at + n), b: theta.subarray(s.at + n, s.at + 2 * n) };
  }

  /** Per-head M_K and M_V at the current parameters, as the layer gradient takes them (null: identity). */
  projections(): Record<Side, Float64Array[] | null> {
    const out: Record<Side, Float64Array[] | null> = { ...this.fixed };
    for (const side of this.sides) {
      out[side] = this.slots
        .filter((s) => s.side === side)
        .map((s) => {
          const { a, b } = this.factors(this.theta, s);
          return pairProduct(a, b, this.d, s.rank);
        });
    }
    return out;
  }

  /**
   * ∂ℒ/∂θ in θ's layout, from the layer gradient at `projections()` (thin-space keys: at `compression()`,
   * whose gradient is already per factor).
   */
  gradient(res: LayerGradResult | ThinGradResult): Float64Array {
    const out = new Float64Array(this.theta.length);
    for (const s of this.slots) {
      const { a, b } = this.factors(this.theta, s);
      const g =
        s.side === 'keys' && 'gradA' in res
          ? { a: res.gradA[s.head], b: res.gradB[s.head] }
          : factorGradients(
              ('gradK' in res && s.side === 'keys' ? res.gradK : res.gradV)[s.head],
              a,
              b,
              this.d,
              s.rank,
            );
      out.set(g.a, s.at);
      out.set(g.b, s.at + g.a.length);
    }
    return out;
  }

  /** The layer compression at parameters `theta` (θ or a kept copy), with factors copied out of it. */
  compression(theta: Float64Array = this.theta): LayerCompression {
    const out: LayerCompression = { ...this.start };
    for (const side of this.sides) {
      out[side] = this.slots
        .filter((s) => s.side === side)
        .map((s) => {
          const { a, b } = this.factors(theta, s);
          return { a: a.slice(), b: b.slice(), rank: s.rank };
        });
    }
    return out;
  }
}
