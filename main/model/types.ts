/**
 * The engine's normalised view of a checkpoint. Every architecture adapter maps its config.json and
 * tensor names onto these shapes, so the runtime, the methods and the export see one layout:
 * linear weights are row-major [out, in] (the nn.Linear convention), whatever the file stores.
 */
import type { KvLayerLayout } from './kv-layout.ts';

/** Storage dtypes we read; compute is always float32. */
export type DType = 'F32' | 'F16' | 'BF16';

export type ArchFamily = 'llama' | 'gpt2';

export interface ModelSpec {
  /** config.json `model_type`: llama, mistral, qwen2 or gpt2. */
  modelType: string;
  /** The graph family that computes it. llama covers mistral and qwen2. */
  family: ArchFamily;
  /** D, the residual width. */
  hiddenSize: number;
  numLayers: number;
  /** H, query heads. */
  numHeads: number;
  /** H_kv, key/value heads (== numHeads without GQA). */
  numKvHeads: number;
  /** d, per-head dimension (config `head_dim` when present, else hiddenSize / numHeads). */
  headDim: number;
  /** MLP hidden width. */
  intermediateSize: number;
  vocabSize: number;
  /** Longest context the model was trained for (max_position_embeddings / n_positions). */
  maxPositions: number;
  norm: { kind: 'rms' | 'layer'; eps: number };
  /** RoPE (rotate_half convention) or null when positions are learned (GPT-2). */
  rope: { theta: number } | null;
  act: 'silu' | 'gelu_new';
  /** Biases on q/k/v projections (qwen2, gpt2). */
  qkvBias: boolean;
  /** Bias on the attention output projection (gpt2). */
  oBias: boolean;
  /** Biases in the MLP (gpt2). */
  mlpBias: boolean;
  tieWordEmbeddings: boolean;
  /** Dtype of the layer weights in the checkpoint. */
  dtype: DType;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /** Per-layer cache layout of a Rankwise-compressed checkpoint (config `kv_compression`); absent otherwise. */
  kvCompression?: KvLayerLayout[];
}

export interface Linear {
  /** Row-major [out, in]. */
  weight: Float32Array;
  bias?: Float32Array;
  out: number;
  in: number;
}

export interface Norm {
  weight: Float32Array;
  /** LayerNorm only. */
  bias?: Float32Array;
}

/** One decoder layer. Llama: pre-norm attention + SwiGLU MLP; GPT-2: pre-norm attention + GELU MLP. */
export interface LayerWeights {
  attnNorm: Norm;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  mlpNorm: Norm;
  /** SwiGLU gate (llama family only). */
  gate?: Linear;
  up: Linear;
  down: Linear;
}

export interface EmbeddingWeights {
  /** [vocab, D] */
  tokens: Float32Array;
  /** [maxPositions, D], GPT-2 learned positions. */
  positions?: Float32Array;
  finalNorm: Norm;
  /** [vocab, D]; the same array as `tokens` when embeddings are tied. */
  lmHead: Float32Array;
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
