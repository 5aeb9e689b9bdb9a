import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultInvFreq } from '../../main/model/arch/rope.ts';
import { readModelSpec } from '../../main/model/config.ts';
import { openModel } from '../../main/model/model.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import { GEMMA2_RECIPE as RECIPE } from './arch-recipes.ts';
import { tempDir } from '../helpers/paths.ts';
import {
  configFolder,
  expectCodecRoundTrip,
  expectForwardMatchesReference,
  loadAll,
  specOf,
} from './arch-helpers.ts';
import { expectRankwiseError } from './fixtures.ts';
import { referenceForward } from '../reference/forward.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir('rankwise-gemma2-');
});
afterAll(() => tmp.cleanup());

/** gemma-2-9b's config.json. */
const GEMMA2 = {
  architectures: ['Gemma2ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  attn_logit_softcapping: 50.0,
  bos_token_id: 2,
  cache_implementation: 'hybrid',
  eos_token_id: 1,
  final_logit_softcapping: 30.0,
  head_dim: 256,
  hidden_act: 'gelu_pytorch_tanh',
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 3584,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 8192,
  model_type: 'gemma2',
  num_attention_heads: 16,
  num_hidden_layers: 42,
  num_key_value_heads: 8,
  pad_token_id: 0,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  sliding_window: 4096,
  sliding_window_size: 4096,
  torch_dtype: 'bfloat16',
  transformers_version: '4.42.0.dev0',
  use_cache: true,
  vocab_size: 256000,
};

describe('gemma2 config', () => {
  it('describes the block: (1 + w) norms, post-norms, GeGLU, caps, √D embedding, alternating windows', async () => {
    const spec = await specOf(tmp.dir, GEMMA2);
    expect(spec).toMatchObject({
      modelType: 'gemma2',
      headDim: 256,
      numKvHeads: 8,
      tieWordEmbeddings: true, // Gemma2Config's default
      dtype: 'BF16',
      bosTokenId: 2,
      eosTokenId: 1,
    });
    const b = spec.block;
    expect(b).toMatchObject({
      norm: { kind: 'rms', eps: 1e-6, offset: 1 },
      postNorms: true,
      qkNorm: false,
      mlp: { gated: true, act: 'gelu_tanh' },
      bias: { qkv: false, o: false, mlp: false },
      queryScale: 1 / 16,
      attnSoftcap: 50,
      finalSoftcap: 30,
      // √3584 = 59.866…, in bfloat16 (steps of 1/4 there) 59.75
      embedScale: 59.75,
    });
    expect(b.rope).toEqual({
      theta: 10000,
      invFreq: defaultInvFreq(10000, 256),
      attentionFactor: 1,
      scaling: 'default',
    });
    // transformers' layer_types: sliding when (i + 1) % 2, i.e. layers 0, 2, 4 …
    expect(b.slidingWindow).toEqual(Array.from({ length: 42 }, (_, i) => (i % 2 === 0 ? 4096 : null)));
  });

  it('rounds √hidden_size in the checkpoint dtype, as torch.tensor(hidden_size**0.5, dtype) does', async () => {
    const at = async (hidden: number, dtype: string) =>
      (await specOf(tmp.dir, { ...GEMMA2, hidden_size: hidden, torch_dtype: dtype })).block.embedScale;
    expect(await at(3072, 'bfloat16')).toBe(55.5); // the value transformers' comment gives
    expect(await at(3072, 'float16')).toBe(55.4375);
    expect(await at(3072, 'float32')).toBe(Math.fround(Math.sqrt(3072)));
    expect(await at(2304, 'float32')).toBe(48);
  });

  it('query_pre_attn_scalar, caps turned off with null, defaults, layer_types', async () => {
    const a = await specOf(tmp.dir, {
      ...GEMMA2,
      head_dim: 128,
      query_pre_attn_scalar: 144, // gemma-2-27b: not head_dim
      attn_logit_softcapping: null,
      final_logit_softcapping: null,
    });
    expect(a.block).toMatchObject({ queryScale: 1 / 12, attnSoftcap: null, finalSoftcap: null });
    const {
      attn_logit_softcapping: _a,
      final_logit_softcapping: _f,
      query_pre_attn_scalar: _q,
      sliding_window: _s,
      head_dim: _h,
      hidden_activation: _act,
      ...bare
    } = GEMMA2;
    const b = await specOf(tmp.dir, bare);
    expect(b.headDim).toBe(256);
    expect(b.block).toMatchObject({ attnSoftcap: 50, finalSoftcap: 30, queryScale: 1 / 16 });
    expect(b.block.mlp.act).toBe('gelu_tanh');
    expect(b.block.slidingWindow[0]).toBe(4096);
    const types = Array.from({ length: 42 }, (_, i) => (i < 2 ? 'full_attention' : 'sliding_attention'));
    const c = await specOf(tmp.dir, { ...GEMMA2, layer_types: types });
    expect(c.block.slidingWindow.slice(0, 4)).toEqual([null, null, 4096, 4096]);
    const d = await specOf(tmp.dir, { ...GEMMA2, hidden_activation: 'gelu' });
    expect(d.block.mlp.act).toBe('gelu');
  });

  it('refuses what it does not implement, by name', async () => {
    const cases: [Record<string, unknown>, RegExp, 'unsupported-model' | 'bad-input'][] = [
      [{ hidden_activation: 'relu' }, /hidden_activation "relu"/, 'unsupported-model'],
      [
        { use_bidirectional_attention: true },
        /use_bidirectional_attention true is not supported/,
        'unsupported-model',
      ],
      [
        {
          rope_parameters: {
            full_attention: { rope_type: 'default' },
            sliding_attention: { rope_type: 'default' },
          },
        },
        /rope_parameters per layer type/,
        'unsupported-model',
      ],
      [{ rope_scaling: { rope_type: 'dynamic' } }, /rope_scaling\.factor is required/, 'bad-input'],
    ];
    for (const [patch, pattern, kind] of cases) {
      const f = configFolder(tmp.dir, { ...GEMMA2, ...patch });
      await expectRankwiseError(readModelSpec(f.dir), kind, pattern, f.file);
    }
  });
});

describe('gemma2 synthetic checkpoint', () => {
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmp.dir, 'synthetic');
    await writeSyntheticModel(dir, RECIPE);
  });

  it('maps the four norms of a layer to their fields', async () => {
    const m = await openModel(dir);
    try {
      expect(m.spec.block).toMatchObject({
        postNorms: true,
        norm: { offset: 1 },
        attnSoftcap: 2,
        finalSoftcap: 3,
        queryScale: 1 / Math.sqrt(12),
        embedScale: Math.fround(Math.sqrt(32)),
      });
      expect(m.spec.block.slidingWindow).toEqual([5, null]);
      expect(m.checkpoint.has('lm_head.weight')).toBe(false);
      const L = await m.loadLayer(1);
      const raw = (n: string) => m.checkpoint.readFloat32(`model.layers.1.${n}.weight`);
      expect(L.attnNorm.weight).toEqual(await raw('input_layernorm'));
      expect(L.postAttnNorm!.weight).toEqual(await raw('post_attention_layernorm'));
      expect(L.mlpNorm.weight).toEqual(await raw('pre_feedforward_layernorm'));
      expect(L.postMlpNorm!.weight).toEqual(await raw('post_feedforward_layernorm'));
      // stored gains are w of (1 + w): near 0 for the pre-norms
      expect(Math.abs(L.attnNorm.weight[0])).toBeLessThan(0.2);
      const emb = await m.loadEmbeddings();
      expect(emb.lmHead).toBe(emb.tokens);
    } finally {
      await m.close();
    }
  });

  it('embedScale follows a bfloat16 checkpoint: √32 becomes 5.65625', async () => {
    const bf = path.join(tmp.dir, 'bf16');
    await writeSyntheticModel(bf, { ...RECIPE, dtype: 'BF16' });
    const m = await openModel(bf);
    try {
      expect(m.spec.block.embedScale).toBe(5.65625);
    } finally {
      await m.close();
    }
  });

  it('round-trips through the codec', async () => {
    await expectCodecRoundTrip(dir, path.join(tmp.dir, 'roundtrip'));
  });

  it('soft-caps the reference logits', async () => {
    const m = await openModel(dir);
    try {
      const { emb, layers } = await loadAll(m);
      const { logits } = referenceForward(m.spec, emb, layers, [5, 80, 120, 33, 200, 7, 150, 90]);
      for (const row of logits) for (const l of row) expect(Math.abs(l)).toBeLessThan(3);
    } finally {
      await m.close();
    }
  });

  it('runs in onnxruntime as the float64 reference computes it', async () => {
    await expectForwardMatchesReference(dir);
  });
});
