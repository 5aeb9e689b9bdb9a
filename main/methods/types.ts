import type { LayerWeights, ModelSpec } from '../model/types.ts';

/** Method ids, as the CLI and the API name them. */
export type MethodId = 'ksvd' | 'eigen' | 'kqsvd' | 'thinkeys' | 'stief';
export const METHOD_IDS: readonly MethodId[] = ['ksvd', 'eigen', 'kqsvd', 'thinkeys', 'stief'];

/**
 * Where key projections act (methods.md §2.2): `pre-rope` caches a latent of the pre-RoPE key and
 * rebuilds the key before rotating it (R1); `post-rope` projects rotated keys and queries (R2); `folded`
 * is the exact fold into W_K and W_Q of a model without RoPE.
 */
export type KeySpace = 'pre-rope' | 'post-rope' | 'folded';

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

/** What a method sees of a layer: its weights and the calibration statistics of its original inputs. */
export interface LayerCapture {
  layer: number;
  weights: LayerWeights;
  grams: LayerGrams;
}

/**
 * A method's fit of one layer: nested bases, so any per-head rank pair is a truncation and a whole
 * error-rank profile costs one fit.
 */
export interface LayerFit {
  keySpace: KeySpace;
  /** The compression at per-head ranks (kRank, vRank); a rank equal to d leaves that side uncompressed. */
  at(kRank: number, vRank: number): LayerCompression;
  /**
   * Set when `at` picks, per rank pair, between fits whose keys depend on kRank only and values on vRank
   * only (StiefAttention: learned or EigenAttention bases). Plain fits are such a fit themselves. The job
   * cache stores fits in this form.
   */
  mixture?: { fits: LayerFit[]; pick(kRank: number, vRank: number): number };
}

export interface CompressionMethod {
  id: MethodId;
  /** One-paragraph plain explanation, for the CLI help and the wizard. */
  summary: string;
  /** Key spaces this method can fit on this model; the first is its default. */
  keySpaces(spec: ModelSpec): KeySpace[];
  fit(capture: LayerCapture, spec: ModelSpec, keySpace: KeySpace): LayerFit;
}
