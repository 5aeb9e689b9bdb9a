import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openModel } from '../../main/model/model.ts';
import { writeSyntheticModel, type SyntheticRecipe } from '../../main/model/synthetic.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { ModelRunner } from '../../main/runtime/runner.ts';
import { forwardSequences } from '../../main/runtime/forward.ts';
import { gpt2LayerFromRaw, referenceLogits, referenceNll } from '../reference/forward.ts';
import { tempDir } from '../helpers/paths.ts';
import { maxRelError } from '../helpers/numeric.ts';

const base = {
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  intermediateSize: 48,
  vocabSize: 300,
  maxPositions: 64,
  seed: 7,
} as const;

/** Every axis the issue names: both families, three dtypes, sharding, GQA and MHA, biases on and off. */
const CASES: [string, SyntheticRecipe][] = [
  ['llama F32 GQA', { ...base, modelType: 'llama', numKvHeads: 2, dtype: 'F32', tie: false }],
  ['llama F16 MHA tied', { ...base, modelType: 'llama', numKvHeads: 4, dtype: 'F16', tie: true }],
  [
    'llama BF16 GQA sharded',
    { ...base, modelType: 'llama', numKvHeads: 1, dtype: 'BF16', tie: false, shardBytes: 20_000 },
  ],
  [
    'llama with head_dim ≠ D/H and biases',
    { ...base, modelType: 'llama', numKvHeads: 2, headDim: 16, dtype: 'F32', tie: false, qkvBias: true },
  ],
  ['mistral F32 GQA', { ...base, modelType: 'mistral', numKvHeads: 2, dtype: 'F32', tie: false }],
  [
    'qwen2 BF16 GQA with q/k/v biases',
    { ...base, modelType: 'qwen2', numKvHeads: 2, dtype: 'BF16', tie: true },
  ],
  ['gpt2 F32', { ...base, modelType: 'gpt2', numKvHeads: 4, dtype: 'F32', tie: true }],
  [
    'gpt2 F16 sharded',
    { ...base, modelType: 'gpt2', numKvHeads: 4, dtype: 'F16', tie: true, shardBytes: 16_000 },
  ],
  ['gpt2 BF16', { ...base, modelType: 'gpt2', numKvHeads: 4, dtype: 'BF16', tie: true }],
];

const tmp = tempDir();
let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create({ device: 'cpu' });
});
afterAll(async () => {
  await engine.release();
  tmp.cleanup();
});

describe('onnxruntime forward equals the float64 TypeScript reference on synthetic checkpoints', () => {
  it.each(CASES)('%s', async (name, recipe) => {
    const dir = `${tmp.dir}/${name.replace(/\W+/g, '-')}`;
    await writeSyntheticModel(dir, recipe);
    const model = await openModel(dir);
    try {
      const spec = model.spec;
      expect(spec.modelType).toBe(recipe.modelType);
      expect(spec.dtype).toBe(recipe.dtype);
      const seqs = [
        Int32Array.from({ length: 13 }, (_, t) => (t * 37 + 5) % spec.vocabSize),
        Int32Array.from({ length: 13 }, (_, t) => (t * 11 + 200) % spec.vocabSize),
        Int32Array.from({ length: 6 }, (_, t) => (t * 53 + 1) % spec.vocabSize),
      ];
      const { logits, nll } = await forwardSequences(new ModelRunner(engine, model), seqs, { logits: 'all' });
      // GPT-2's fused Conv1D weights are unpacked by the reference itself, not by the adapter under test.
      const prefix = model.checkpoint.has('transformer.h.0.ln_1.weight') ? 'transformer.' : '';
      const read = (n: string) => model.checkpoint.readFloat32(n);
      const layers = await Promise.all(
        Array.from({ length: spec.numLayers }, (_, i) =>
          spec.modelType === 'gpt2' ? gpt2LayerFromRaw(read, prefix, spec, i) : model.loadLayer(i),
        ),
      );
      const emb = await model.loadEmbeddings();
      seqs.forEach((ids, s) => {
        const want = referenceLogits(spec, emb, layers, ids);
        const got = (logits as Float32Array[])[s];
        const flat = Float64Array.from(want.flatMap((row) => Array.from(row)));
        expect(maxRelError(got, flat)).toBeLessThan(1e-4);
        // Logits must carry signal: a degenerate (constant) model would pass the comparison trivially.
        expect(Math.max(...flat) - Math.min(...flat)).toBeGreaterThan(1e-2);
        const wantNll = want.slice(0, -1).map((row, t) => referenceNll(row, ids[t + 1]));
        expect(maxRelError(nll[s], wantNll)).toBeLessThan(1e-4);
      });
    } finally {
      await model.close();
    }
  });
});
