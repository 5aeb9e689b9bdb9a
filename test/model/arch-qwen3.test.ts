import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultInvFreq } from '../../main/model/arch/rope.ts';
import { readModelSpec } from '../../main/model/config.ts';
import { openModel } from '../../main/model/model.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import { QWEN3_RECIPE as RECIPE } from './arch-recipes.ts';
import { tempDir } from '../helpers/paths.ts';
import { configFolder, expectCodecRoundTrip, expectForwardMatchesReference, specOf } from './arch-helpers.ts';
import { editConfig, expectRankwiseError, rewriteCheckpoint } from './fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir('rankwise-qwen3-');
});
afterAll(() => tmp.cleanup());

/** Qwen3-0.6B's config.json as transformers 4.51 saved it. */
const QWEN3 = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.51.0',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

describe('qwen3 config', () => {
  it('describes the block: per-head q/k norms, head_dim of its own, no biases, full attention', async () => {
    const spec = await specOf(tmp.dir, QWEN3);
    expect(spec).toMatchObject({
      modelType: 'qwen3',
      hiddenSize: 1024,
      numHeads: 16,
      numKvHeads: 8,
      headDim: 128, // not 1024 / 16
      tieWordEmbeddings: true,
      dtype: 'BF16',
    });
    const b = spec.block;
    expect(b).toMatchObject({
      norm: { kind: 'rms', eps: 1e-6, offset: 0 },
      qkNorm: true,
      postNorms: false,
      mlp: { gated: true, act: 'silu' },
      bias: { qkv: false, o: false, mlp: false },
      queryScale: 1 / Math.sqrt(128),
      attnSoftcap: null,
      finalSoftcap: null,
      embedScale: 1,
    });
    expect(b.rope).toEqual({
      theta: 1e6,
      invFreq: defaultInvFreq(1e6, 128),
      attentionFactor: 1,
      scaling: 'default',
    });
    expect(b.slidingWindow).toEqual(new Array(28).fill(null));
  });

  it('head_dim defaults to 128, attention_bias gives q, k, v and o biases', async () => {
    const { head_dim: _, ...noHeadDim } = QWEN3;
    const spec = await specOf(tmp.dir, { ...noHeadDim, attention_bias: true });
    expect(spec.headDim).toBe(128);
    expect(spec.block.bias).toEqual({ qkv: true, o: true, mlp: false });
  });

  it('YaRN, as rope_theta + rope_scaling and as transformers 5 rope_parameters', async () => {
    const yarn = { rope_type: 'yarn', factor: 4.0, original_max_position_embeddings: 32768 };
    const a = await specOf(tmp.dir, { ...QWEN3, rope_scaling: yarn });
    const { rope_theta: _, rope_scaling: __, ...bare } = QWEN3;
    const b = await specOf(tmp.dir, { ...bare, rope_parameters: { ...yarn, rope_theta: 1000000 } });
    expect(b.block.rope).toEqual(a.block.rope);
    const rope = a.block.rope!;
    expect(rope.scaling).toBe('yarn');
    expect(rope.attentionFactor).toBeCloseTo(0.1 * Math.log(4) + 1, 12);
    // d = 128, θ = 1e6, 32768 original positions: β_fast = 32 rotations at pair 23.6 (floor 23),
    // β_slow = 1 at pair 39.6 (ceil 40); a linear ramp between them
    const base = defaultInvFreq(1e6, 128);
    for (let i = 0; i < 64; i++) {
      const ramp = Math.min(1, Math.max(0, (i - 23) / (40 - 23)));
      const want = base[i] * (1 - ramp) + (base[i] / 4) * ramp;
      expect(rope.invFreq[i]).toBeCloseTo(want, 15);
    }
    expect(rope.invFreq[10]).toBe(base[10]);
    expect(rope.invFreq[50]).toBeCloseTo(base[50] / 4, 15);
  });

  it('sliding windows as Qwen3Config resolves them: use_sliding_window, max_window_layers, layer_types', async () => {
    const on = { ...QWEN3, use_sliding_window: true, sliding_window: 4096, max_window_layers: 20 };
    const a = await specOf(tmp.dir, on);
    expect(a.block.slidingWindow).toEqual([...new Array(20).fill(null), ...new Array(8).fill(4096)]);
    // sliding_window without use_sliding_window is off
    const b = await specOf(tmp.dir, { ...QWEN3, sliding_window: 4096 });
    expect(b.block.slidingWindow.every((w) => w === null)).toBe(true);
    const types = Array.from({ length: 28 }, (_, i) =>
      i % 3 === 0 ? 'sliding_attention' : 'full_attention',
    );
    const c = await specOf(tmp.dir, { ...on, layer_types: types });
    expect(c.block.slidingWindow).toEqual(types.map((t) => (t === 'sliding_attention' ? 4096 : null)));
  });

  it('refuses what it does not implement, by name', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ rope_scaling: { rope_type: 'longrope', short_factor: [], long_factor: [] } }, /"longrope"/],
      [{ hidden_act: 'relu' }, /hidden_act "relu"/],
      [{ attn_logit_softcapping: 50 }, /attn_logit_softcapping 50 is not supported for model_type "qwen3"/],
      [{ partial_rotary_factor: 0.5 }, /partial_rotary_factor 0\.5/],
      [{ use_sliding_window: true }, /use_sliding_window is true but sliding_window is not given/],
      [{ layer_types: ['chunked_attention', ...new Array(27).fill('full_attention')] }, /layer_types\[0\]/],
      [
        {
          kv_compression: {
            format: 'rankwise',
            version: 1,
            layers: Array.from({ length: 28 }, (_, i) => ({
              k_rank: 64,
              v_rank: 64,
              key_space: i === 3 ? 'pre-rope' : 'post-rope',
            })),
          },
        },
        /kv_compression layer 3 stores pre-rope keys of rank 64, which the per-head q\/k norms/,
      ],
    ];
    for (const [patch, pattern] of cases) {
      const f = configFolder(tmp.dir, { ...QWEN3, ...patch });
      await expectRankwiseError(readModelSpec(f.dir), 'unsupported-model', pattern, f.file);
    }
  });
});

describe('qwen3 synthetic checkpoint', () => {
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmp.dir, 'synthetic');
    await writeSyntheticModel(dir, RECIPE);
  });

  it('is written under Qwen3 tensor names and loads to the recipe', async () => {
    const m = await openModel(dir);
    try {
      expect(m.checkpoint.info('model.layers.1.self_attn.q_norm.weight').shape).toEqual([16]);
      expect(m.checkpoint.info('model.layers.1.self_attn.k_norm.weight').shape).toEqual([16]);
      expect(m.checkpoint.info('model.layers.0.self_attn.q_proj.weight').shape).toEqual([64, 32]);
      expect(m.checkpoint.info('model.layers.0.self_attn.o_proj.bias').shape).toEqual([32]);
      expect(m.spec.block).toMatchObject({ qkNorm: true, bias: { qkv: true, o: true, mlp: false } });
      expect(m.spec.block.slidingWindow).toEqual([null, 5]);
      const L = await m.loadLayer(0);
      expect(L.qNorm!.weight).toEqual(
        await m.checkpoint.readFloat32('model.layers.0.self_attn.q_norm.weight'),
      );
      expect(L.kNorm!.weight).toEqual(
        await m.checkpoint.readFloat32('model.layers.0.self_attn.k_norm.weight'),
      );
      expect(L.postAttnNorm).toBeUndefined();
    } finally {
      await m.close();
    }
  });

  it('round-trips through the codec', async () => {
    await expectCodecRoundTrip(dir, path.join(tmp.dir, 'roundtrip'));
  });

  it('refuses q/k norms that its config does not declare (the same weights read as llama)', async () => {
    const other = path.join(tmp.dir, 'as-llama');
    await writeSyntheticModel(other, RECIPE);
    editConfig(other, (c) => {
      c.model_type = 'llama';
      c.attention_bias = true;
      delete c.use_sliding_window;
    });
    await expectRankwiseError(
      openModel(other),
      'bad-input',
      /"model\.layers\.0\.self_attn\.k_norm\.weight" but the llama layout has no such tensor/,
    );
  });

  it('names a q_norm of the wrong width', async () => {
    const other = path.join(tmp.dir, 'bad-norm');
    await writeSyntheticModel(other, RECIPE);
    await rewriteCheckpoint(other, (ts) =>
      ts.map((t) =>
        t.name === 'model.layers.1.self_attn.q_norm.weight'
          ? { ...t, shape: [8], data: new Uint8Array(32) }
          : t,
      ),
    );
    await expectRankwiseError(
      openModel(other),
      'bad-input',
      /"model\.layers\.1\.self_attn\.q_norm\.weight" has shape \[8\], expected \[16\]/,
    );
  });

  it('runs in onnxruntime as the float64 reference computes it', async () => {
    await expectForwardMatchesReference(dir);
  });
});
