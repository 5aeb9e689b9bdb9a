/**
 * The engine's normalised view of a checkpoint. Every architecture adapter maps its config.json and
 * tensor names onto these shapes, so the runtime, the methods and the export see one layout:
 * linear weights are row-major [out, in] (the nn.Linear convention), whatever the file stores.
 */
import type { DType, KvLayerLayout } from '../contract/model.ts';

/** Storage dtypes are part of the API's model card (main/contract/model.ts). */
export type { DType };

/**
 * How one decoder block computes, as the architecture's adapter describes it from config.json. The block
 * builder (runtime/graphs) and the float64 reference read only this, never `modelType`: a new
 * architecture that fits these switches needs no graph code. Any config key that changes the computation
 * and is not expressible here is refused by the adapter, by name.
 */
export interface BlockRecipe {
  norm: {
    kind: 'rms' | 'layer';
    eps: number;
    /** Gemma scales by (1 + w) instead of w: the stored weight is w, the gain applied is w + offset. */
    offset: 0 | 1;
  };
  /** Gemma 2: the attention and MLP outputs are normalised (own weights) before each residual add. */
  postNorms: boolean;
  /** Qwen3: per-head RMSNorm (weight [d], same eps) on queries and keys after projection, before RoPE. */
  qkNorm: boolean;
  /** gated: act(x·W_gateᵀ) ⊙ (x·W_upᵀ) (SwiGLU, GeGLU); plain: act(x·W_upᵀ + b). */
  mlp: { gated: boolean; act: 'silu' | 'gelu_tanh' | 'gelu' };
  bias: { qkv: boolean; o: boolean; mlp: boolean };
  rope: RopeRecipe | null;
  /** Multiplies q·kᵀ before the softmax: 1/√d usually; Gemma 2: query_pre_attn_scalar^−½. */
  queryScale: number;
  /** Gemma 2: scores → cap·tanh(scores / cap) before masking; null when absent. */
  attnSoftcap: number | null;
  /** Gemma 2: logits → cap·tanh(logits / cap); null when absent. */
  finalSoftcap: number | null;
  /** Gemma: the token embedding is multiplied by this (√D, rounded to the checkpoint dtype); 1 otherwise. */
  embedScale: number;
  /**
   * Per layer, the sliding window W (a query at t sees keys t−W+1 … t), or null for full causal attention.
   * Mistral: every layer; Gemma 2: alternating layers; length numLayers.
   */
  slidingWindow: (number | null)[];
}

/**
 * Rotary embedding in the rotate_half convention, fully resolved: the inverse frequency of each of the
 * d/2 (or rotaryDim/2) pairs after any scaling (llama3, linear, yarn), and a factor on cos and sin
 * (yarn's attention scaling; 1 otherwise). Tables are cos(t·invFreq)·attentionFactor.
 */
export interface RopeRecipe {
  theta: number;
  invFreq: number[];
  attentionFactor: number;
  /** The config's scaling type, for the model card ('default' when none). */
  scaling: string;
}

export interface ModelSpec {
  /** config.json `model_type` (arch/registry.ts lists those supported). */
  modelType: string;
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
  tieWordEmbeddings: boolean;
  /** How each decoder block computes (norms, MLP, RoPE, biases, windows). */
  block: BlockRecipe;
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

/**
 * One decoder layer, as `ModelSpec.block` describes its computation: pre-norm attention and MLP, each
 * added to the residual stream. Optional members exist exactly when the recipe asks for them.
 */
export interface LayerWeights {
  attnNorm: Norm;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  /** `block.qkNorm`: per-head RMSNorm of the queries, weight [d], before RoPE (Qwen3). */
  qNorm?: Norm;
  /** `block.qkNorm`: per-head RMSNorm of the keys, weight [d], before RoPE (Qwen3). */
  kNorm?: Norm;
  /** `block.postNorms`: normalises the attention output before its residual add (Gemma 2). */
  postAttnNorm?: Norm;
  mlpNorm: Norm;
  /** The gate of a gated MLP (`block.mlp.gated`: SwiGLU, GeGLU); its bias with `block.bias.mlp`. */
  gate?: Linear;
  up: Linear;
  down: Linear;
  /** `block.postNorms`: normalises the MLP output before its residual add (Gemma 2). */
  postMlpNorm?: Norm;
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
