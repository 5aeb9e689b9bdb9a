import type { SyntheticRecipe } from '../main/model/synthetic.ts';

/** A Llama-shaped model of about 125 M parameters (GPT-2-small proportions), stored BF16 like real checkpoints. */
export const SYNTH_125M: SyntheticRecipe = {
  modelType: 'llama',
  hiddenSize: 768,
  numLayers: 12,
  numHeads: 12,
  numKvHeads: 12,
  intermediateSize: 2560,
  vocabSize: 32000,
  maxPositions: 2048,
  dtype: 'BF16',
  tie: true,
  seed: 125,
  kvSpectrumDecay: 0.9,
};
