import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readModelSpec } from '../../main/model/config.ts';
import { openModel } from '../../main/model/model.ts';
import { writeSyntheticModel, type SyntheticRecipe } from '../../main/model/synthetic.ts';
import { tempDir } from '../helpers/paths.ts';
import { configFolder, expectCodecRoundTrip, expectForwardMatchesReference, specOf } from './arch-helpers.ts';
import { expectRankwiseError, rewriteCheckpoint } from './fixtures.ts';

// The recipe keys of the llama adapter's three model types that older versions ignored or refused.

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir('rankwise-llama-');
});
afterAll(() => tmp.cleanup());

const LLAMA = {
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  vocab_size: 300,
  max_position_embeddings: 256,
};

describe('llama, mistral and qwen2 recipes', () => {
  it('llama mlp_bias gives gate, up and down biases; attention_bias q, k, v and o', async () => {
    const spec = await specOf(tmp.dir, { ...LLAMA, mlp_bias: true });
    expect(spec.block.bias).toEqual({ qkv: false, o: false, mlp: true });
    const both = await specOf(tmp.dir, { ...LLAMA, mlp_bias: true, attention_bias: true });
    expect(both.block.bias).toEqual({ qkv: true, o: true, mlp: true });
  });

  it('llama hidden_act: a gated MLP with exact gelu, or the tanh forms', async () => {
    expect((await specOf(tmp.dir, { ...LLAMA, hidden_act: 'gelu' })).block.mlp).toEqual({
      gated: true,
      act: 'gelu',
    });
    for (const act of ['gelu_new', 'gelu_pytorch_tanh']) {
      expect((await specOf(tmp.dir, { ...LLAMA, hidden_act: act })).block.mlp).toEqual({
        gated: true,
        act: 'gelu_tanh',
      });
    }
  });

  it('mistral: sliding_window on every layer; null turns it off; absent is MistralConfig’s 4096', async () => {
    const m = { ...LLAMA, model_type: 'mistral' };
    expect((await specOf(tmp.dir, { ...m, sliding_window: 32 })).block.slidingWindow).toEqual([
      32, 32, 32, 32,
    ]);
    expect((await specOf(tmp.dir, { ...m, sliding_window: null })).block.slidingWindow).toEqual([
      null,
      null,
      null,
      null,
    ]);
    expect((await specOf(tmp.dir, m)).block.slidingWindow).toEqual([4096, 4096, 4096, 4096]);
  });

  it('qwen2: the window counts only with use_sliding_window, from max_window_layers on', async () => {
    const q = { ...LLAMA, model_type: 'qwen2', sliding_window: 32 };
    expect((await specOf(tmp.dir, q)).block.slidingWindow).toEqual([null, null, null, null]);
    expect(
      (await specOf(tmp.dir, { ...q, use_sliding_window: true, max_window_layers: 2 })).block.slidingWindow,
    ).toEqual([null, null, 32, 32]);
    expect(
      (await specOf(tmp.dir, { ...q, use_sliding_window: true, max_window_layers: 0 })).block.slidingWindow,
    ).toEqual([32, 32, 32, 32]);
    // the class default of 28 layers leaves a 4-layer model without windows
    expect((await specOf(tmp.dir, { ...q, use_sliding_window: true })).block.slidingWindow).toEqual([
      null,
      null,
      null,
      null,
    ]);
    const types = ['sliding_attention', 'full_attention', 'full_attention', 'sliding_attention'];
    expect(
      (await specOf(tmp.dir, { ...q, use_sliding_window: true, layer_types: types })).block.slidingWindow,
    ).toEqual([32, null, null, 32]);
  });

  it('refuses keys of other families by name', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ attn_logit_softcapping: 50 }, /attn_logit_softcapping 50 is not supported for model_type "llama"/],
      [{ final_logit_softcapping: 30 }, /final_logit_softcapping/],
      [{ query_pre_attn_scalar: 256 }, /query_pre_attn_scalar/],
      [{ use_sliding_window: true }, /use_sliding_window true is not supported for model_type "llama"/],
      [{ model_type: 'mistral', use_sliding_window: true }, /model_type "mistral"/],
      [
        { model_type: 'qwen2', use_sliding_window: true, sliding_window: 8, layer_types: ['full_attention'] },
        /layer_types/,
      ],
    ];
    for (const [patch, pattern] of cases) {
      const f = configFolder(tmp.dir, { ...LLAMA, ...patch });
      const kind = 'layer_types' in patch ? 'bad-input' : 'unsupported-model';
      await expectRankwiseError(readModelSpec(f.dir), kind, pattern, f.file);
    }
  });
});

const RECIPE: SyntheticRecipe = {
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
  seed: 15,
};

describe('synthetic checkpoints of the new recipe keys', () => {
  it('llama with mlp_bias and exact gelu: biases under HF names, forward as the reference', async () => {
    const dir = path.join(tmp.dir, 'mlp-bias');
    await writeSyntheticModel(dir, { ...RECIPE, config: { mlp_bias: true, hidden_act: 'gelu' } });
    const m = await openModel(dir);
    try {
      for (const [n, rows] of [
        ['gate_proj', 48],
        ['up_proj', 48],
        ['down_proj', 32],
      ] as const) {
        expect(m.checkpoint.info(`model.layers.1.mlp.${n}.bias`).shape).toEqual([rows]);
      }
      const L = await m.loadLayer(1);
      expect([L.gate!.bias!.length, L.up.bias!.length, L.down.bias!.length]).toEqual([48, 48, 32]);
      expect(m.spec.block.mlp).toEqual({ gated: true, act: 'gelu' });
    } finally {
      await m.close();
    }
    await expectCodecRoundTrip(dir, path.join(tmp.dir, 'mlp-bias-rt'));
    await expectForwardMatchesReference(dir);
  });

  it('mistral with a sliding window shorter than the sequence', async () => {
    const dir = path.join(tmp.dir, 'mistral-window');
    await writeSyntheticModel(dir, { ...RECIPE, modelType: 'mistral', config: { sliding_window: 6 } });
    const m = await openModel(dir);
    expect(m.spec.block.slidingWindow).toEqual([6, 6]);
    await m.close();
    await expectForwardMatchesReference(dir);
  });

  it('qwen2 with windows on its last layer', async () => {
    const dir = path.join(tmp.dir, 'qwen2-window');
    await writeSyntheticModel(dir, {
      ...RECIPE,
      modelType: 'qwen2',
      config: { use_sliding_window: true, sliding_window: 4, max_window_layers: 1 },
    });
    const m = await openModel(dir);
    expect(m.spec.block.slidingWindow).toEqual([null, 4]);
    await m.close();
    await expectForwardMatchesReference(dir);
  });

  it('a layer tensor of another architecture is refused by name', async () => {
    const dir = path.join(tmp.dir, 'stray');
    await writeSyntheticModel(dir, RECIPE);
    await rewriteCheckpoint(dir, (ts) => [
      ...ts,
      {
        name: 'model.layers.0.post_feedforward_layernorm.weight',
        dtype: 'F32',
        shape: [32],
        data: new Float32Array(32),
      },
    ]);
    await expectRankwiseError(
      openModel(dir),
      'bad-input',
      /"model\.layers\.0\.post_feedforward_layernorm\.weight" but the llama layout has no such tensor/,
    );
  });
});
