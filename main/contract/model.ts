/**
 * What the API says about a model folder (`inspect`, the report's model section): plain data, JSON safe.
 */
import type { KeySpace } from '../core/kv.ts';

/** Storage dtypes the engine reads; compute is always float32. */
export type DType = 'F32' | 'F16' | 'BF16';

/** The graph family that computes a model: llama covers mistral and qwen2. */
export type ArchFamily = 'llama' | 'gpt2';

/** One layer of a Rankwise checkpoint's cache. A rank equal to the head dimension leaves that side uncompressed. */
export interface KvLayerLayout {
  kRank: number;
  vRank: number;
  keySpace: KeySpace;
  /** `thin-rope` layers with compressed keys: the original RoPE plane of each thin plane (core/kv.ts). */
  ropePlanes?: number[];
}

/** What `inspect` reports about a model folder (ARCHITECTURE.md §3, step 1). */
export interface ModelInfo {
  /** config.json `model_type`. */
  modelType: string;
  family: ArchFamily;
  /** L */
  layers: number;
  /** H */
  heads: number;
  /** H_kv */
  kvHeads: number;
  /** d */
  headDim: number;
  /** D */
  hiddenSize: number;
  vocabSize: number;
  maxPositions: number;
  /** RoPE base θ, or null when positions are learned (GPT-2). */
  rope: number | null;
  /** Per-head q/k norms between the projections and RoPE (Qwen3): keys compress only after RoPE. */
  qkNorm: boolean;
  dtype: DType;
  /** Parameters counted from the checkpoint's tensor shapes; tied embeddings once, buffers not at all. */
  parameters: number;
  /** Bytes of K and V cache per token at `dtype`: 2 · L · H_kv · d · bytes(dtype). */
  kvBytesPerToken: number;
  /** The cache of one sequence at a few context lengths (4096, 32768, 131072 tokens). */
  kvBytesPerSequence: { tokens: number; bytes: number }[];
  /** A Rankwise checkpoint: its per-layer cache ranks, and the cache the model had before. */
  kvCompression?: { layers: KvLayerLayout[]; originalKvBytesPerToken: number };
}

/** `inspect`: the architecture card of a model folder. */
export interface ModelCard extends ModelInfo {
  dir: string;
}
