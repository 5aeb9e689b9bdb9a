import type { KeySpace, LayerCompression, LayerGrams, MethodId } from '../core/kv.ts';
import type { LayerWeights, ModelSpec } from '../model/types.ts';

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
