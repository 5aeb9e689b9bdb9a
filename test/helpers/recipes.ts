import type { SyntheticRecipe } from '../../main/model/synthetic.ts';

/**
 * The small synthetic layers most tests run on: D = 32, 4 query heads of dimension 8, 2 layers, F32, tied.
 * Llama has 2 KV heads (GQA) and q/k/v biases unless overridden; GPT-2 is MHA with its own biases.
 */
export function tinyLlama(seed: number, overrides: Partial<SyntheticRecipe> = {}): SyntheticRecipe {
  return {
    modelType: 'llama',
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    intermediateSize: 48,
    vocabSize: 300,
    maxPositions: 128,
    dtype: 'F32',
    tie: true,
    qkvBias: true,
    seed,
    ...overrides,
  };
}

export function tinyGpt2(seed: number, overrides: Partial<SyntheticRecipe> = {}): SyntheticRecipe {
  return {
    modelType: 'gpt2',
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 4,
    intermediateSize: 64,
    vocabSize: 300,
    maxPositions: 128,
    dtype: 'F32',
    tie: true,
    seed,
    ...overrides,
  };
}
