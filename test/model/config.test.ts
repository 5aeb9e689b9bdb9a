import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SUPPORTED_MODEL_TYPES } from '../../main/model/arch/registry.ts';
import { readModelSpec } from '../../main/model/config.ts';
import { tempDir } from '../helpers/paths.ts';
import { expectRankwiseError } from './fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
let n = 0;
beforeAll(() => {
  tmp = tempDir('rankwise-cfg-');
});
afterAll(() => tmp.cleanup());

/** A folder holding only config.json (readModelSpec then trusts the config's dtype). */
function folder(config: Record<string, unknown> | string): { dir: string; file: string } {
  const dir = path.join(tmp.dir, `m${n++}`);
  fs.mkdirSync(dir);
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return { dir, file };
}

const LLAMA = {
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  vocab_size: 300,
  max_position_embeddings: 256,
};

const GPT2 = { model_type: 'gpt2', n_embd: 64, n_layer: 2, n_head: 4, n_positions: 128, vocab_size: 300 };

describe('llama family configs', () => {
  it('fills the documented defaults', async () => {
    const spec = await readModelSpec(folder(LLAMA).dir);
    expect(spec).toMatchObject({
      numKvHeads: 4, // = heads
      headDim: 16, // = hidden / heads
      tieWordEmbeddings: false,
      dtype: 'F32',
      bosTokenId: null,
      eosTokenId: null,
    });
    expect(spec.block).toMatchObject({
      rope: { theta: 10000 },
      norm: { kind: 'rms', eps: 1e-6 },
      mlp: { gated: true, act: 'silu' },
      bias: { qkv: false, o: false, mlp: false },
    });
  });

  it('honours head_dim, GQA, rope_theta, eps, biases, tying, dtype and an eos list', async () => {
    const spec = await readModelSpec(
      folder({
        ...LLAMA,
        head_dim: 32,
        num_key_value_heads: 2,
        rope_theta: 500000,
        rms_norm_eps: 1e-5,
        attention_bias: true,
        mlp_bias: true,
        tie_word_embeddings: true,
        torch_dtype: 'bfloat16',
        bos_token_id: 5,
        eos_token_id: [7, 8],
        rope_scaling: null,
      }).dir,
    );
    expect(spec).toMatchObject({
      headDim: 32,
      numKvHeads: 2,
      tieWordEmbeddings: true,
      dtype: 'BF16',
      bosTokenId: 5,
      eosTokenId: 7,
    });
    expect(spec.block).toMatchObject({
      rope: { theta: 500000 },
      norm: { eps: 1e-5 },
      bias: { qkv: true, o: true, mlp: true },
    });
  });

  it('mistral and qwen2: theta from the config, qwen2 always has q/k/v bias, `dtype` key', async () => {
    const m = await readModelSpec(
      folder({ ...LLAMA, model_type: 'mistral', rope_theta: 1e6, sliding_window: 4096 }).dir,
    );
    expect(m).toMatchObject({ modelType: 'mistral', block: { rope: { theta: 1e6 }, bias: { qkv: false } } });
    const q = await readModelSpec(
      folder({ ...LLAMA, model_type: 'qwen2', tie_word_embeddings: true, dtype: 'float16' }).dir,
    );
    expect(q).toMatchObject({
      modelType: 'qwen2',
      block: { bias: { qkv: true, o: false } },
      tieWordEmbeddings: true,
      dtype: 'F16',
    });
  });

  it('takes bos/eos from generation_config.json when config.json lacks them', async () => {
    const { dir } = folder(LLAMA);
    fs.writeFileSync(
      path.join(dir, 'generation_config.json'),
      JSON.stringify({ bos_token_id: 1, eos_token_id: [2, 3] }),
    );
    expect(await readModelSpec(dir)).toMatchObject({ bosTokenId: 1, eosTokenId: 2 });
  });

  it('accepts transformers ≥ 4.56 rope_parameters of the default type', async () => {
    const spec = await readModelSpec(
      folder({ ...LLAMA, rope_parameters: { rope_type: 'default', rope_theta: 1234 } }).dir,
    );
    expect(spec.block.rope).toMatchObject({ theta: 1234, scaling: 'default' });
  });
});

describe('gpt2 configs', () => {
  it('fills the documented defaults', async () => {
    const spec = await readModelSpec(folder(GPT2).dir);
    expect(spec).toMatchObject({
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 4,
      headDim: 16,
      intermediateSize: 256, // 4 · n_embd
      maxPositions: 128,
      tieWordEmbeddings: true,
    });
    expect(spec.block).toMatchObject({
      norm: { kind: 'layer', eps: 1e-5 },
      rope: null,
      mlp: { gated: false, act: 'gelu_tanh' },
      bias: { qkv: true, o: true, mlp: true },
    });
  });

  it('honours n_inner, layer_norm_epsilon and gelu_pytorch_tanh', async () => {
    const spec = await readModelSpec(
      folder({ ...GPT2, n_inner: 100, layer_norm_epsilon: 1e-6, activation_function: 'gelu_pytorch_tanh' })
        .dir,
    );
    expect(spec).toMatchObject({
      intermediateSize: 100,
      block: { norm: { eps: 1e-6 }, mlp: { gated: false, act: 'gelu_tanh' } },
    });
  });

  it('rejects other activations and attention variants', async () => {
    const a = folder({ ...GPT2, activation_function: 'relu' });
    await expectRankwiseError(
      readModelSpec(a.dir),
      'unsupported-model',
      /activation_function "relu" is not supported/,
      a.file,
    );
    const b = folder({ ...GPT2, scale_attn_by_inverse_layer_idx: true });
    await expectRankwiseError(
      readModelSpec(b.dir),
      'unsupported-model',
      /scale_attn_by_inverse_layer_idx/,
      b.file,
    );
  });
});

describe('config errors', () => {
  it('missing num_attention_heads names the field', async () => {
    const { num_attention_heads: _, ...cfg } = LLAMA;
    const f = folder(cfg);
    await expectRankwiseError(
      readModelSpec(f.dir),
      'bad-input',
      /missing the required field "num_attention_heads"/,
      f.file,
    );
  });

  it('missing n_embd (gpt2) names the field', async () => {
    const { n_embd: _, ...cfg } = GPT2;
    const f = folder(cfg);
    await expectRankwiseError(readModelSpec(f.dir), 'bad-input', /"n_embd"/, f.file);
  });

  it('non-integer field', async () => {
    const f = folder({ ...LLAMA, hidden_size: 64.5 });
    await expectRankwiseError(
      readModelSpec(f.dir),
      'bad-input',
      /"hidden_size" must be a positive integer, found 64\.5/,
      f.file,
    );
  });

  it('unsupported model_type names it and the supported list', async () => {
    const f = folder({ ...LLAMA, model_type: 'bert' });
    const e = await expectRankwiseError(
      readModelSpec(f.dir),
      'unsupported-model',
      /model_type "bert" is not supported/,
      f.file,
    );
    for (const t of SUPPORTED_MODEL_TYPES) expect(e.message).toContain(t);
    expect(SUPPORTED_MODEL_TYPES).toEqual(['llama', 'mistral', 'qwen2', 'gpt2', 'qwen3', 'phi3', 'gemma2']);
  });

  it('missing model_type', async () => {
    const { model_type: _, ...cfg } = LLAMA;
    const f = folder(cfg);
    await expectRankwiseError(readModelSpec(f.dir), 'bad-input', /no "model_type"/, f.file);
  });

  it('a rope_scaling type that is not implemented is refused by name', async () => {
    const f = folder({
      ...LLAMA,
      rope_scaling: { rope_type: 'longrope', short_factor: [1], long_factor: [1] },
    });
    await expectRankwiseError(
      readModelSpec(f.dir),
      'unsupported-model',
      /rope_scaling type "longrope" is not supported/,
      f.file,
    );
  });

  it('hidden_act other than silu, gelu and the tanh gelus', async () => {
    const f = folder({ ...LLAMA, hidden_act: 'relu' });
    await expectRankwiseError(readModelSpec(f.dir), 'unsupported-model', /hidden_act "relu"/, f.file);
  });

  it('heads not divisible by KV heads', async () => {
    const f = folder({ ...LLAMA, num_key_value_heads: 3 });
    await expectRankwiseError(
      readModelSpec(f.dir),
      'bad-input',
      /4 is not a multiple of num_key_value_heads 3/,
      f.file,
    );
  });

  it('hidden size not divisible by heads without head_dim', async () => {
    const f = folder({ ...LLAMA, num_attention_heads: 5, num_key_value_heads: 5 });
    await expectRankwiseError(
      readModelSpec(f.dir),
      'bad-input',
      /not divisible by num_attention_heads 5/,
      f.file,
    );
  });

  it('quantized checkpoints', async () => {
    const f = folder({ ...LLAMA, quantization_config: { quant_method: 'gptq' } });
    await expectRankwiseError(readModelSpec(f.dir), 'unsupported-model', /quantization_config/, f.file);
  });

  it('config.json that is not JSON, or not an object', async () => {
    const a = folder('{"model_type": "llama",');
    await expectRankwiseError(readModelSpec(a.dir), 'bad-input', /not valid JSON/, a.file);
    const b = folder('[1]');
    await expectRankwiseError(readModelSpec(b.dir), 'bad-input', /expected a JSON object/, b.file);
  });

  it('missing config.json', async () => {
    const dir = path.join(tmp.dir, 'noconfig');
    fs.mkdirSync(dir);
    await expectRankwiseError(
      readModelSpec(dir),
      'bad-input',
      /file not found/,
      path.join(dir, 'config.json'),
    );
  });
});
