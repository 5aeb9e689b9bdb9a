import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultInvFreq } from '../../main/model/arch/rope.ts';
import { readModelSpec } from '../../main/model/config.ts';
import { openModel } from '../../main/model/model.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import { PHI3_RECIPE as RECIPE } from './arch-recipes.ts';
import { tempDir } from '../helpers/paths.ts';
import { configFolder, expectCodecRoundTrip, expectForwardMatchesReference, specOf } from './arch-helpers.ts';
import { expectRankwiseError, rewriteCheckpoint } from './fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir('rankwise-phi3-');
});
afterAll(() => tmp.cleanup());

/** Phi-3-mini-4k-instruct's config.json (auto_map left out). */
const PHI3 = {
  _name_or_path: 'Phi-3-mini-4k-instruct',
  architectures: ['Phi3ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 1,
  embd_pdrop: 0.0,
  eos_token_id: 32000,
  hidden_act: 'silu',
  hidden_size: 3072,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 4096,
  model_type: 'phi3',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  original_max_position_embeddings: 4096,
  pad_token_id: 32000,
  resid_pdrop: 0.0,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  sliding_window: 2047,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.40.2',
  use_cache: true,
  vocab_size: 32064,
};

describe('phi3 config', () => {
  it('describes the block: the Llama block, no biases, its sliding window on every layer', async () => {
    const spec = await specOf(tmp.dir, PHI3);
    expect(spec).toMatchObject({
      modelType: 'phi3',
      headDim: 96,
      numKvHeads: 32,
      tieWordEmbeddings: false,
      dtype: 'BF16',
      bosTokenId: 1,
      eosTokenId: 32000,
    });
    expect(spec.block).toMatchObject({
      norm: { kind: 'rms', eps: 1e-5, offset: 0 },
      qkNorm: false,
      postNorms: false,
      mlp: { gated: true, act: 'silu' },
      bias: { qkv: false, o: false, mlp: false },
      queryScale: 1 / Math.sqrt(96),
      rope: { theta: 10000, invFreq: defaultInvFreq(10000, 96), attentionFactor: 1, scaling: 'default' },
    });
    expect(spec.block.slidingWindow).toEqual(new Array(32).fill(2047));
    // Phi3Config's sliding_window defaults to none
    const { sliding_window: _, ...noWindow } = PHI3;
    expect((await specOf(tmp.dir, noWindow)).block.slidingWindow.every((w) => w === null)).toBe(true);
  });

  it('reads transformers 5 rope_parameters as rope_theta', async () => {
    const { rope_theta: _, rope_scaling: __, ...bare } = PHI3;
    const a = await specOf(tmp.dir, {
      ...bare,
      rope_parameters: { rope_type: 'default', rope_theta: 10000.0 },
    });
    expect(a.block.rope).toEqual((await specOf(tmp.dir, PHI3)).block.rope);
  });

  it('refuses LongRoPE (both its names) and partial rotary embeddings, by name', async () => {
    const longrope = { short_factor: [1, 1], long_factor: [2, 2] };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ rope_scaling: { ...longrope, type: 'longrope' } }, /rope_scaling type "longrope" is not supported/],
      [{ rope_scaling: { ...longrope, type: 'su' } }, /rope_scaling type "su" is not supported/],
      [
        { rope_scaling: null, rope_parameters: { ...longrope, rope_type: 'longrope', rope_theta: 1e4 } },
        /rope_parameters type "longrope" is not supported/,
      ],
      [{ partial_rotary_factor: 0.75 }, /partial_rotary_factor 0\.75 is not supported/],
      [{ hidden_act: 'gelu_fast' }, /hidden_act "gelu_fast"/],
      [{ final_logit_softcapping: 30 }, /final_logit_softcapping 30 is not supported for model_type "phi3"/],
    ];
    for (const [patch, pattern] of cases) {
      const f = configFolder(tmp.dir, { ...PHI3, ...patch });
      await expectRankwiseError(readModelSpec(f.dir), 'unsupported-model', pattern, f.file);
    }
  });
});

describe('phi3 synthetic checkpoint', () => {
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmp.dir, 'synthetic');
    await writeSyntheticModel(dir, RECIPE);
  });

  it('stores fused qkv_proj and gate_up_proj, split in transformers’ order', async () => {
    const m = await openModel(dir);
    try {
      const D = 32;
      const [q, kv, I] = [4 * 8, 2 * 8, 48];
      expect(m.checkpoint.has('model.layers.0.self_attn.q_proj.weight')).toBe(false);
      expect(m.checkpoint.info('model.layers.0.self_attn.qkv_proj.weight').shape).toEqual([q + 2 * kv, D]);
      expect(m.checkpoint.info('model.layers.0.mlp.gate_up_proj.weight').shape).toEqual([2 * I, D]);
      expect(m.spec.block.slidingWindow).toEqual([7, 7]);
      const L = await m.loadLayer(1);
      // rows of the stored [out, in] matrices, by index: q | k | v and gate | up
      const qkv = await m.checkpoint.readFloat32('model.layers.1.self_attn.qkv_proj.weight');
      expect(L.q.weight).toEqual(qkv.slice(0, q * D));
      expect(L.k.weight).toEqual(qkv.slice(q * D, (q + kv) * D));
      expect(L.v.weight).toEqual(qkv.slice((q + kv) * D));
      const gateUp = await m.checkpoint.readFloat32('model.layers.1.mlp.gate_up_proj.weight');
      expect(L.gate!.weight).toEqual(gateUp.slice(0, I * D));
      expect(L.up.weight).toEqual(gateUp.slice(I * D));
      expect([L.q.out, L.k.out, L.v.out, L.gate!.out, L.up.out]).toEqual([q, kv, kv, I, I]);
    } finally {
      await m.close();
    }
  });

  it('round-trips through the codec', async () => {
    await expectCodecRoundTrip(dir, path.join(tmp.dir, 'roundtrip'));
  });

  it('names a fused projection of the wrong height, and a bias Phi-3 does not have', async () => {
    const a = path.join(tmp.dir, 'bad-qkv');
    await writeSyntheticModel(a, RECIPE);
    await rewriteCheckpoint(a, (ts) =>
      ts.map((t) =>
        t.name === 'model.layers.0.self_attn.qkv_proj.weight'
          ? { ...t, shape: [32, 32], data: new Uint8Array(4096) }
          : t,
      ),
    );
    await expectRankwiseError(
      openModel(a),
      'bad-input',
      /"model\.layers\.0\.self_attn\.qkv_proj\.weight" has shape \[32, 32\], expected \[64, 32\]/,
    );
    const b = path.join(tmp.dir, 'bias');
    await writeSyntheticModel(b, RECIPE);
    await rewriteCheckpoint(b, (ts) => [
      ...ts,
      {
        name: 'model.layers.1.self_attn.qkv_proj.bias',
        dtype: 'F32',
        shape: [64],
        data: new Float32Array(64),
      },
    ]);
    await expectRankwiseError(
      openModel(b),
      'bad-input',
      /has tensor "model\.layers\.1\.self_attn\.qkv_proj\.bias" but the config gives phi3 no q\/k\/v biases/,
    );
  });

  it('runs in onnxruntime as the float64 reference computes it', async () => {
    await expectForwardMatchesReference(dir);
  });
});
