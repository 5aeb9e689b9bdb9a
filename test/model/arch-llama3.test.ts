import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultInvFreq } from '../../main/model/arch/rope.ts';
import { readModelSpec } from '../../main/model/config.ts';
import { openModel } from '../../main/model/model.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import { LLAMA3_RECIPE as RECIPE, LLAMA3_ROPE } from './arch-recipes.ts';
import { tempDir } from '../helpers/paths.ts';
import { configFolder, expectCodecRoundTrip, expectForwardMatchesReference, specOf } from './arch-helpers.ts';
import { expectRankwiseError } from './fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir('rankwise-llama3-');
});
afterAll(() => tmp.cleanup());

/** Llama-3.1-8B's config.json. */
const LLAMA31 = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  hidden_act: 'silu',
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: LLAMA3_ROPE,
  rope_theta: 500000.0,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.43.0.dev0',
  use_cache: true,
  vocab_size: 128256,
};

/** Llama 3.1's frequencies written out from the description in Meta's reference code. */
function llama31Frequencies(
  theta: number,
  d: number,
  factor: number,
  low: number,
  high: number,
  original: number,
) {
  return defaultInvFreq(theta, d).map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < original / high) return f; // fast rotations: untouched
    if (wavelength > original / low) return f / factor; // slow ones: interpolated
    const s = (original / wavelength - low) / (high - low);
    return (1 - s) * (f / factor) + s * f;
  });
}

describe('llama 3.x config', () => {
  it('resolves the llama3 rope scaling into the block’s frequencies', async () => {
    const spec = await specOf(tmp.dir, LLAMA31);
    expect(spec).toMatchObject({
      modelType: 'llama',
      headDim: 128,
      numKvHeads: 8,
      block: { rope: { theta: 500000 } },
    });
    const rope = spec.block.rope!;
    expect(rope.scaling).toBe('llama3');
    expect(rope.attentionFactor).toBe(1);
    const want = llama31Frequencies(500000, 128, 8, 1, 4, 8192);
    rope.invFreq.forEach((f, i) => expect(f).toBeCloseTo(want[i], 15));
    // the three regimes all occur at d = 128, θ = 5e5
    const base = defaultInvFreq(500000, 128);
    expect(rope.invFreq[0]).toBe(base[0]);
    expect(rope.invFreq[63]).toBe(base[63] / 8);
    expect(rope.invFreq.some((f, i) => f !== base[i] && f !== base[i] / 8)).toBe(true);
  });

  it('reads the same scaling from transformers ≥ 4.56 rope_parameters', async () => {
    const { rope_theta: _, rope_scaling: __, ...bare } = LLAMA31;
    const a = await specOf(tmp.dir, { ...bare, rope_parameters: { ...LLAMA3_ROPE, rope_theta: 500000.0 } });
    expect(a.block.rope).toEqual((await specOf(tmp.dir, LLAMA31)).block.rope);
    // the pre-4.45 key name "type" is the same thing
    const { rope_type: ___, ...noType } = LLAMA3_ROPE;
    const b = await specOf(tmp.dir, { ...LLAMA31, rope_scaling: { ...noType, type: 'llama3' } });
    expect(b.block.rope).toEqual(a.block.rope);
  });

  it('linear and dynamic scaling', async () => {
    const base = defaultInvFreq(500000, 128);
    const linear = await specOf(tmp.dir, { ...LLAMA31, rope_scaling: { type: 'linear', factor: 4 } });
    expect(linear.block.rope!.invFreq).toEqual(base.map((f) => f / 4));
    // dynamic NTK equals plain RoPE up to max_position_embeddings, as far as Rankwise ever runs
    const dynamic = await specOf(tmp.dir, { ...LLAMA31, rope_scaling: { type: 'dynamic', factor: 2 } });
    expect(dynamic.block.rope).toEqual({
      theta: 500000,
      invFreq: base,
      attentionFactor: 1,
      scaling: 'dynamic',
    });
    expect(dynamic.maxPositions).toBe(131072);
  });

  it('refuses incomplete or conflicting scaling, by name', async () => {
    const { low_freq_factor: _, ...noLow } = LLAMA3_ROPE;
    const cases: [Record<string, unknown>, 'bad-input' | 'unsupported-model', RegExp][] = [
      [{ rope_scaling: noLow }, 'bad-input', /rope_scaling\.low_freq_factor is required/],
      [
        { rope_scaling: { ...LLAMA3_ROPE, factor: -1 } },
        'bad-input',
        /rope_scaling\.factor must be a positive/,
      ],
      [
        { rope_parameters: { rope_type: 'linear', factor: 2, rope_theta: 500000 } },
        'unsupported-model',
        /rope_parameters \(type "linear"\) and rope_scaling \(type "llama3"\) disagree/,
      ],
      [{ rope_scaling: { rope_type: 'mrope', factor: 2 } }, 'unsupported-model', /"mrope" is not supported/],
    ];
    for (const [patch, kind, pattern] of cases) {
      const f = configFolder(tmp.dir, { ...LLAMA31, ...patch });
      await expectRankwiseError(readModelSpec(f.dir), kind, pattern, f.file);
    }
  });
});

describe('llama 3.x synthetic checkpoint', () => {
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmp.dir, 'synthetic');
    await writeSyntheticModel(dir, RECIPE);
  });

  it('carries the scaled frequencies', async () => {
    const m = await openModel(dir);
    try {
      expect(m.spec.block.rope!.invFreq).toEqual(llama31Frequencies(10000, 8, 8, 1, 4, 128));
      expect(m.checkpoint.has('model.layers.0.self_attn.q_proj.weight')).toBe(true);
    } finally {
      await m.close();
    }
  });

  it('round-trips through the codec', async () => {
    await expectCodecRoundTrip(dir, path.join(tmp.dir, 'roundtrip'));
  });

  it('runs in onnxruntime as the float64 reference computes it', async () => {
    await expectForwardMatchesReference(dir);
  });

  it('with YaRN (an attention factor on cos and sin) too', async () => {
    const yarn = path.join(tmp.dir, 'yarn');
    await writeSyntheticModel(yarn, {
      ...RECIPE,
      config: { rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32 } },
    });
    const m = await openModel(yarn);
    expect(m.spec.block.rope!.attentionFactor).toBeCloseTo(1 + 0.1 * Math.log(4), 12);
    await m.close();
    await expectForwardMatchesReference(yarn);
  });
});
