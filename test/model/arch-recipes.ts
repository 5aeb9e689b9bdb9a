/**
 * The synthetic checkpoints of the architecture tests, one per family, small enough to run every method:
 * each family's unit file checks the config, the codec and the forward on it, its integration file
 * compresses it with every method and exports it.
 */
import type { SyntheticRecipe } from '../../main/model/synthetic.ts';

/** Llama 3.1's rope_scaling. */
export const LLAMA3_ROPE = {
  factor: 8.0,
  low_freq_factor: 1.0,
  high_freq_factor: 4.0,
  original_max_position_embeddings: 8192,
  rope_type: 'llama3',
};

export const LLAMA3_RECIPE: SyntheticRecipe = {
  modelType: 'llama',
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 48,
  vocabSize: 300,
  maxPositions: 128,
  dtype: 'F32',
  tie: false,
  seed: 14,
  // d = 8: wavelengths 2π·(1, 10, 100, 1000); with 128 original positions one of each regime
  config: {
    rope_theta: 10000,
    rope_scaling: { ...LLAMA3_ROPE, original_max_position_embeddings: 128 },
  },
};

export const QWEN3_RECIPE: SyntheticRecipe = {
  modelType: 'qwen3',
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16, // ≠ 32 / 4
  intermediateSize: 48,
  vocabSize: 300,
  maxPositions: 128,
  dtype: 'F32',
  tie: false,
  qkvBias: true,
  seed: 11,
  // layer 1 slides with a window shorter than the test sequences
  config: { use_sliding_window: true, sliding_window: 5, max_window_layers: 1 },
};

export const PHI3_RECIPE: SyntheticRecipe = {
  modelType: 'phi3',
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 48,
  vocabSize: 300,
  maxPositions: 128,
  dtype: 'F32',
  tie: false,
  seed: 12,
  config: { sliding_window: 7 },
};

export const GEMMA2_RECIPE: SyntheticRecipe = {
  modelType: 'gemma2',
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  intermediateSize: 48,
  vocabSize: 300,
  maxPositions: 128,
  dtype: 'F32',
  tie: true,
  seed: 13,
  // caps small enough to bend the synthetic model's scores and logits; a window shorter than the tests'
  config: {
    sliding_window: 5,
    attn_logit_softcapping: 2.0,
    final_logit_softcapping: 3.0,
    query_pre_attn_scalar: 12,
  },
};
