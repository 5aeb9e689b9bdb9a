/**
 * The KV vocabulary every layer of the engine shares: which method, where keys are projected, and the
 * per-layer compression a method produces. Plain data, no imports, so the renderer may use it too.
 */

/** Method ids, as the CLI and the API name them. */
export type MethodId = 'ksvd' | 'eigen' | 'kqsvd' | 'thinkeys' | 'stief';
export const METHOD_IDS: readonly MethodId[] = ['ksvd', 'eigen', 'kqsvd', 'thinkeys', 'stief'];

/**
 * What rank allocation minimises: each layer's predicted effect on the model's next-token NLL, measured by
 * probes (`e2e`), or the layers' relative output errors (`layer`).
 */
export type Objective = 'e2e' | 'layer';
export const OBJECTIVES: readonly Objective[] = ['e2e', 'layer'];

/**
 * Where key projections act (methods.md §2.2): `pre-rope` caches a latent of the pre-RoPE key and
 * rebuilds the key before rotating it (R1); `post-rope` projects rotated keys and queries (R2); `folded`
 * is the exact fold into W_K and W_Q of a model without RoPE; `thin-rope` folds A into W_K and B into W_Q
 * and rotates the r-dimensional thin queries and keys with RoPE planes of their own (R3: attention in
 * the thin space, runtime/thin-rope.ts), which is exact only for the planes it starts from and is meant
 * to be fine-tuned.
 */
export type KeySpace = 'pre-rope' | 'post-rope' | 'folded' | 'thin-rope';

/**
 * A rank-r factor pair of one KV head, d×r each, row-major float64: the cache holds x·A (r numbers) and
 * the full-dimension vector is rebuilt as (x·A)·Bᵀ. An orthonormal basis P has A = B = P; KQ-SVD's
 * oblique pair has A ≠ B with A·Bᵀ a projector.
 */
export interface FactorPair {
  a: Float64Array;
  b: Float64Array;
  rank: number;
}

/** How one layer's keys and values are compressed. A null side is left at full dimension. */
export interface LayerCompression {
  keySpace: KeySpace;
  /** Per-head ranks (equal for every KV head of the layer). */
  kRank: number;
  vRank: number;
  /** One pair per KV head, or null for uncompressed keys. */
  keys: FactorPair[] | null;
  values: FactorPair[] | null;
  /**
   * `thin-rope` keys only: the original RoPE plane whose frequency each thin plane turns at, ⌊kRank/2⌋
   * of them (runtime/thin-rope.ts); an odd kRank's last thin dimension is not rotated.
   */
  ropePlanes?: number[];
}

/** Per-KV-head second moments of one layer, streamed over the calibration tokens (float64, d×d each). */
export interface LayerGrams {
  /** Tokens summed into every Gram (windows × window length). */
  tokens: number;
  kPre: Float64Array[];
  kPost: Float64Array[];
  /** Stacked group queries: Σ over the G query heads of a KV head of QᵀQ. */
  qPre: Float64Array[];
  qPost: Float64Array[];
  v: Float64Array[];
}
