import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SYNTHETIC_MODEL_TYPES } from '../../main/model/arch/registry.ts';
import { INDEX_FILE } from '../../main/model/checkpoint.ts';
import { modelInfo } from '../../main/model/info.ts';
import { openModel } from '../../main/model/model.ts';
import type { ModelHandle } from '../../main/model/model.ts';
import {
  DEMO_RECIPE_PATH,
  readRecipe,
  validateRecipe,
  writeSyntheticModel,
} from '../../main/model/synthetic.ts';
import type { SyntheticRecipe } from '../../main/model/synthetic.ts';
import type { LayerWeights } from '../../main/model/types.ts';
import { tempDir, TINYSTORIES_TEXT } from '../helpers/paths.ts';
import { expectRankwiseError, singularValuesOfRows } from './fixtures.ts';
import { referenceForward } from '../reference/forward.ts';

let tmp: ReturnType<typeof tempDir>;
let n = 0;
beforeAll(() => {
  tmp = tempDir('rankwise-synth-');
});
afterAll(() => tmp.cleanup());

const nextDir = () => path.join(tmp.dir, `m${n++}`);

/** First paragraph of the TinyStories excerpt plus characters that need byte fallback. */
const PARAGRAPH =
  fs
    .readFileSync(TINYSTORIES_TEXT, 'utf8')
    .split(/\n\s*\n/)[0]
    .trim() + '\nNaïve café — “quotes”, tabs\tand 12,345 numbers! ✓';

function loadTokenizer(dir: string): Tokenizer {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  return new Tokenizer(json, config);
}

/** Analytic parameter count of a synthetic recipe (independent of the checkpoint). */
function expectedParameters(r: SyntheticRecipe, V: number): number {
  const D = r.hiddenSize;
  const d = r.headDim ?? D / r.numHeads;
  const q = r.numHeads * d;
  const kv = r.numKvHeads * d;
  const I = r.intermediateSize;
  const head = r.tie ? 0 : V * D;
  if (r.modelType === 'gpt2') {
    const layer = 4 * D + 3 * D * D + 3 * D + D * D + D + D * I + I + I * D + D;
    return V * D + r.maxPositions * D + 2 * D + r.numLayers * layer + head;
  }
  const qkvBias = r.qkvBias ?? r.modelType === 'qwen2';
  const bias = qkvBias ? q + 2 * kv + (r.modelType === 'llama' ? D : 0) : 0;
  const layer = 2 * D + q * D + 2 * kv * D + D * q + 3 * I * D + bias;
  return V * D + D + r.numLayers * layer + head;
}

async function loadAll(m: ModelHandle): Promise<LayerWeights[]> {
  const layers: LayerWeights[] = [];
  for (let i = 0; i < m.spec.numLayers; i++) layers.push(await m.loadLayer(i));
  return layers;
}

function allFinite(layers: LayerWeights[]): boolean {
  for (const L of layers) {
    for (const part of Object.values(L)) {
      for (const arr of [part.weight, part.bias]) if (arr && !arr.every(Number.isFinite)) return false;
    }
  }
  return true;
}

const BASE = { hiddenSize: 32, numLayers: 3, numHeads: 4, intermediateSize: 64, maxPositions: 64, seed: 42 };

const FAMILIES: [string, SyntheticRecipe][] = [
  ['llama F32 tied GQA', { ...BASE, modelType: 'llama', numKvHeads: 2, dtype: 'F32', tie: true }],
  [
    'llama BF16 with attention_bias, head_dim 16',
    { ...BASE, modelType: 'llama', numKvHeads: 1, headDim: 16, dtype: 'BF16', tie: false, qkvBias: true },
  ],
  ['mistral BF16 untied', { ...BASE, modelType: 'mistral', numKvHeads: 2, dtype: 'BF16', tie: false }],
  [
    'qwen2 F16 tied, sharded',
    { ...BASE, modelType: 'qwen2', numKvHeads: 2, dtype: 'F16', tie: true, shardBytes: 20_000 },
  ],
  ['gpt2 F32 untied', { ...BASE, modelType: 'gpt2', numKvHeads: 4, dtype: 'F32', tie: false }],
  [
    'gpt2 BF16 tied, sharded',
    { ...BASE, modelType: 'gpt2', numKvHeads: 4, dtype: 'BF16', tie: true, shardBytes: 30_000 },
  ],
];

describe.each(FAMILIES)('synthetic %s', (_label, recipe) => {
  let dir: string;
  let m: ModelHandle;
  let vocab: number;
  beforeAll(async () => {
    dir = nextDir();
    vocab = (await writeSyntheticModel(dir, recipe)).vocabSize;
    m = await openModel(dir);
  });
  afterAll(() => m.close());

  it('loads back with the requested spec and parameter count', () => {
    const d = recipe.headDim ?? recipe.hiddenSize / recipe.numHeads;
    expect(m.spec).toMatchObject({
      modelType: recipe.modelType,
      hiddenSize: recipe.hiddenSize,
      numLayers: recipe.numLayers,
      numHeads: recipe.numHeads,
      numKvHeads: recipe.numKvHeads,
      headDim: d,
      intermediateSize: recipe.intermediateSize,
      vocabSize: vocab,
      maxPositions: recipe.maxPositions,
      dtype: recipe.dtype,
      tieWordEmbeddings: recipe.tie,
      block: {
        bias: { qkv: recipe.qkvBias ?? (recipe.modelType === 'qwen2' || recipe.modelType === 'gpt2') },
      },
    });
    expect(m.checkpoint.sharded).toBe(recipe.shardBytes !== undefined);
    if (recipe.shardBytes) expect(fs.existsSync(path.join(dir, INDEX_FILE))).toBe(true);
    expect(modelInfo(m).parameters).toBe(expectedParameters(recipe, vocab));
  });

  it('produces finite, non-degenerate logits through a naive forward pass', async () => {
    const layers = await loadAll(m);
    expect(allFinite(layers)).toBe(true);
    const emb = await m.loadEmbeddings();
    expect(emb.lmHead === emb.tokens).toBe(recipe.tie);
    const ids = [5, 80, 120, 33, 200, 7, 150, 90, 60, 250];
    const { logits, residualRms } = referenceForward(m.spec, emb, layers, ids);
    for (const l of logits) expect(l.every(Number.isFinite)).toBe(true);
    const last = logits[logits.length - 1];
    const mean = last.reduce((a, b) => a + b, 0) / last.length;
    const std = Math.sqrt(last.reduce((a, b) => a + (b - mean) ** 2, 0) / last.length);
    expect(std).toBeGreaterThan(0.05); // small by design: the final norm gain is 0.1
    expect(std).toBeLessThan(10);
    const argmaxes = new Set(logits.map((l) => l.indexOf(Math.max(...l))));
    expect(argmaxes.size).toBeGreaterThan(1);
    // the residual stream neither explodes nor vanishes across layers
    expect(Math.max(...residualRms) / Math.min(...residualRms)).toBeLessThan(4);
  });

  it('ships a tokenizer that @huggingface/tokenizers loads and that round-trips English', () => {
    const tok = loadTokenizer(dir);
    const enc = tok.encode(PARAGRAPH);
    expect(Math.max(...enc.ids)).toBeLessThan(vocab);
    expect(tok.decode(enc.ids, { skip_special_tokens: true })).toBe(PARAGRAPH);
    // merges make English shorter than bytes
    expect(enc.ids.length).toBeLessThan(Buffer.byteLength(PARAGRAPH) * 0.8);
    const gen = JSON.parse(fs.readFileSync(path.join(dir, 'generation_config.json'), 'utf8'));
    expect([gen.bos_token_id, gen.eos_token_id]).toEqual([m.spec.bosTokenId, m.spec.eosTokenId]);
    if (recipe.modelType !== 'gpt2') expect(enc.ids[0]).toBe(1); // <s> prepended
  });
});

describe('synthetic depth', () => {
  it.each(['llama', 'gpt2'] as const)('a 24-layer %s keeps its residual stream O(1)', async (modelType) => {
    const dir = nextDir();
    const recipe: SyntheticRecipe = {
      ...BASE,
      numLayers: 24,
      modelType,
      numKvHeads: 4,
      dtype: 'F32',
      tie: true,
    };
    await writeSyntheticModel(dir, recipe);
    const m = await openModel(dir);
    const { logits, residualRms } = referenceForward(
      m.spec,
      await m.loadEmbeddings(),
      await loadAll(m),
      [3, 70, 140, 210],
    );
    await m.close();
    expect(logits.every((l) => l.every(Number.isFinite))).toBe(true);
    expect(Math.max(...residualRms) / Math.min(...residualRms)).toBeLessThan(10);
    expect(residualRms[23]).toBeLessThan(5);
  });
});

describe('synthetic determinism and vocab limits', () => {
  const r: SyntheticRecipe = {
    ...BASE,
    modelType: 'llama',
    numKvHeads: 2,
    dtype: 'F16',
    tie: true,
    vocabSize: 300,
  };

  it('same recipe, same bytes; another seed, other bytes', async () => {
    const [a, b, c] = [nextDir(), nextDir(), nextDir()];
    await writeSyntheticModel(a, r);
    await writeSyntheticModel(b, r);
    await writeSyntheticModel(c, { ...r, seed: 43 });
    for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) {
      expect(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f)))).toBe(true);
    }
    expect(
      fs
        .readFileSync(path.join(a, 'model.safetensors'))
        .equals(fs.readFileSync(path.join(c, 'model.safetensors'))),
    ).toBe(false);
  });

  it.each(['llama', 'gpt2'] as const)(
    'a %s vocab capped at 300 still round-trips with ids < 300',
    async (modelType) => {
      const dir = nextDir();
      const s = await writeSyntheticModel(dir, { ...r, modelType, numKvHeads: 4, vocabSize: 300 });
      expect(s.vocabSize).toBe(300);
      expect(s.tokenizerSize).toBeLessThanOrEqual(300);
      const tok = loadTokenizer(dir);
      const ids = tok.encode(PARAGRAPH).ids;
      expect(Math.max(...ids)).toBeLessThan(300);
      expect(tok.decode(ids, { skip_special_tokens: true })).toBe(PARAGRAPH);
    },
  );
});

describe('KV spectrum', () => {
  const decay = 0.7;

  /** Checks every KV head block of a [H_kv·d, D] weight has singular values c·decay^i. */
  function expectGeometric(w: Float32Array, D: number, kvHeads: number, d: number) {
    for (let g = 0; g < kvHeads; g++) {
      const s = singularValuesOfRows(w, D, g * d, d);
      for (let i = 0; i + 1 < d; i++) expect(s[i + 1] / s[i]).toBeCloseTo(decay, 4);
      // scaled so the block's Frobenius norm is √d, like an i.i.d. N(0, 1/D) block
      expect(s.reduce((a, b) => a + b * b, 0)).toBeCloseTo(d, 3);
    }
  }

  it.each(['llama', 'gpt2'] as const)('%s W_K and W_V head blocks decay geometrically', async (modelType) => {
    const dir = nextDir();
    const gpt2 = modelType === 'gpt2';
    await writeSyntheticModel(dir, {
      ...BASE,
      modelType,
      numKvHeads: gpt2 ? 4 : 2,
      dtype: 'F32',
      tie: true,
      kvSpectrumDecay: decay,
    });
    const m = await openModel(dir);
    const L = await m.loadLayer(1);
    const { hiddenSize: D, numKvHeads, headDim } = m.spec;
    expectGeometric(L.k.weight, D, numKvHeads, headDim);
    expectGeometric(L.v.weight, D, numKvHeads, headDim);
    // the query projection is unstructured: its spectrum is nowhere near geometric
    const sq = singularValuesOfRows(L.q.weight, D, 0, headDim);
    expect(sq[headDim - 1] / sq[0]).toBeGreaterThan(decay ** (headDim - 1) * 2);
    await m.close();
  });
});

describe('demo recipe', () => {
  it('describes the documented demo model', async () => {
    const r = await readRecipe(DEMO_RECIPE_PATH);
    expect(r).toMatchObject({
      modelType: 'llama',
      hiddenSize: 256,
      numLayers: 4,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 32,
      intermediateSize: 688,
      maxPositions: 1024,
      dtype: 'F32',
      tie: true,
      seed: 20261122,
    });
    expect(r.vocabSize).toBeGreaterThanOrEqual(320);
    expect(r.kvSpectrumDecay).toBeGreaterThan(0.7);
    expect(r.kvSpectrumDecay).toBeLessThan(0.9);
  });

  it('generates a model whose tokenizer fills its vocabulary, with finite logits', async () => {
    const dir = nextDir();
    const r = await readRecipe(DEMO_RECIPE_PATH);
    const s = await writeSyntheticModel(dir, r);
    expect(s.tokenizerSize).toBe(r.vocabSize);
    const m = await openModel(dir);
    const info = modelInfo(m);
    expect(info).toMatchObject({
      layers: 4,
      heads: 8,
      kvHeads: 4,
      headDim: 32,
      hiddenSize: 256,
      kvBytesPerToken: 2 * 4 * 4 * 32 * 4,
    });
    const tok = loadTokenizer(dir);
    const ids = tok.encode('Once upon a time, there was a little girl.').ids;
    const { logits } = referenceForward(m.spec, await m.loadEmbeddings(), await loadAll(m), ids);
    expect(logits.every((l) => l.every(Number.isFinite))).toBe(true);
    const s0 = singularValuesOfRows((await m.loadLayer(0)).k.weight, 256, 0, 32);
    expect(s0[1] / s0[0]).toBeCloseTo(r.kvSpectrumDecay!, 4);
    await m.close();
  });
});

describe('recipe validation', () => {
  const ok: SyntheticRecipe = { ...BASE, modelType: 'llama', numKvHeads: 2, dtype: 'F32', tie: true };
  const bad = (patch: Record<string, unknown>, pattern: RegExp) =>
    expectRankwiseError(() => validateRecipe({ ...ok, ...patch }), 'bad-input', pattern);

  it('rejects inconsistent recipes, each with its own message', async () => {
    await bad({ modelType: 'bert' }, /"modelType" must be one of/);
    await bad({ hiddenSize: 0 }, /"hiddenSize" must be a positive integer/);
    await bad({ dtype: 'F64' }, /"dtype" must be one of F32, F16, BF16/);
    await bad({ numKvHeads: 3 }, /multiple of numKvHeads/);
    await bad({ modelType: 'gpt2', numKvHeads: 2 }, /numKvHeads must equal numHeads/);
    await bad({ modelType: 'gpt2', numKvHeads: 4, qkvBias: false }, /always has q\/k\/v biases/);
    await bad({ modelType: 'mistral', qkvBias: true }, /mistral has no attention biases/);
    await bad({ headDim: 7 }, /headDim must be even/);
    await bad({ kvSpectrumDecay: 1.5 }, /"kvSpectrumDecay" must be in \(0, 1\]/);
    await bad({ vocabSize: 259 }, /vocabSize must be at least 260/);
    await bad({ modelType: 'gpt2', numKvHeads: 4, vocabSize: 256 }, /vocabSize must be at least 257/);
    await bad({ seed: -1 }, /"seed" must be a non-negative integer/);
    await bad({ modelType: 'phi3', qkvBias: true }, /phi3 has no attention biases/);
    await bad({ config: [1] }, /"config" must be an object of config.json keys/);
    await bad({ config: { hidden_size: 64 } }, /"config" gives hiddenSize 64 where the recipe says 32/);
    await bad({ config: { torch_dtype: 'bfloat16' } }, /"config" gives dtype BF16 where the recipe says F32/);
    await bad(
      { config: { rope_scaling: { rope_type: 'longrope' } } },
      /the llama config it makes is refused: .*"longrope" is not supported/,
    );
  });

  it('accepts every model type an adapter can write', () => {
    for (const modelType of SYNTHETIC_MODEL_TYPES) {
      const gpt2 = modelType === 'gpt2';
      expect(() => validateRecipe({ ...ok, modelType, numKvHeads: gpt2 ? 4 : 2 })).not.toThrow();
    }
    expect(SYNTHETIC_MODEL_TYPES).toEqual(['llama', 'mistral', 'qwen2', 'gpt2', 'qwen3', 'phi3', 'gemma2']);
  });

  it('readRecipe names the file', async () => {
    const f = path.join(tmp.dir, 'recipe.json');
    fs.writeFileSync(f, '{');
    await expectRankwiseError(readRecipe(f), 'bad-input', /recipe is not valid JSON/, f);
    await expectRankwiseError(
      readRecipe(path.join(tmp.dir, 'none.json')),
      'bad-input',
      /recipe file not found/,
    );
  });
});
