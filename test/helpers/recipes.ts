import { afterAll, beforeAll } from 'vitest';
import { openModel, type ModelHandle } from '../../main/model/model.ts';
import { writeSyntheticModel, type SyntheticRecipe } from '../../main/model/synthetic.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { tempDir } from './paths.ts';

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

/**
 * Writes each recipe's model into a temporary folder before the file's tests and opens it, with one CPU
 * engine; closes and removes everything after them. Read `engine` and `models` inside tests.
 */
export function syntheticModels(recipes: Record<string, SyntheticRecipe>): {
  engine: () => Engine;
  models: Record<string, ModelHandle>;
} {
  const tmp = tempDir();
  let engine: Engine | null = null;
  const models: Record<string, ModelHandle> = {};
  beforeAll(async () => {
    engine = await Engine.create({ device: 'cpu' });
    for (const [name, recipe] of Object.entries(recipes)) {
      await writeSyntheticModel(`${tmp.dir}/${name}`, recipe);
      models[name] = await openModel(`${tmp.dir}/${name}`);
    }
  });
  afterAll(async () => {
    await engine?.release();
    for (const m of Object.values(models)) await m.close();
    tmp.cleanup();
  });
  return { engine: () => engine!, models };
}
