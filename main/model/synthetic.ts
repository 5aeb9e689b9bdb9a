/**
 * Synthetic checkpoints: complete Hugging Face model folders with seeded random weights, for the demo
 * (the demo model is generated, never downloaded) and for tests of every architecture.
 *
 * Weights are random but scaled so a forward pass stays well conditioned over many layers: every linear
 * reading a normalised input has std 1/√fan_in (outputs O(1)); the two projections writing into the
 * residual stream (o, down) are scaled by half the embedding std, so each layer nudges the stream rather
 * than swamping it; norm gains are 1 with small noise; token embeddings have std 2/√D so tied logits
 * have std ≈ 2 (peaked enough to be interesting, far from saturating). Optionally each KV head's W_K and
 * W_V get a geometrically decaying spectrum, so low-rank KV compression has real structure to find.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { badInput } from '../core/errors.ts';
import { transpose } from './arch/common.ts';
import { writeCheckpoint } from './checkpoint.ts';
import { fnv1a, normal, randomOrthonormal, streamFor } from './prng.ts';
import type { TensorToWrite } from './safetensors.ts';
import { gpt2Tokenizer, llamaTokenizer } from './synthetic-tokenizer.ts';
import type { SyntheticTokenizer } from './synthetic-tokenizer.ts';
import type { DType } from './types.ts';

export type SyntheticModelType = 'llama' | 'mistral' | 'qwen2' | 'gpt2';

export interface SyntheticRecipe {
  modelType: SyntheticModelType;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Default hiddenSize / numHeads (GPT-2 allows nothing else). */
  headDim?: number;
  intermediateSize: number;
  /** Rows of the embedding table. Default: the synthetic tokenizer's size; smaller caps the tokenizer. */
  vocabSize?: number;
  maxPositions: number;
  dtype: DType;
  /** Tie the LM head to the token embedding. */
  tie: boolean;
  /** q/k/v biases. Default: true for qwen2 and gpt2 (they always have them), false for llama and mistral. */
  qkvBias?: boolean;
  seed: number;
  /** When set, singular values of every KV head's W_K and W_V block are ∝ decay^i (0 < decay ≤ 1). */
  kvSpectrumDecay?: number;
  /** Shard the weights so no file holds more than this many bytes of tensor data. */
  shardBytes?: number;
}

/** The demo model's recipe, shipped with the app. */
export const DEMO_RECIPE_PATH = fileURLToPath(new URL('../../assets/demo/recipe.json', import.meta.url));

export interface SyntheticModelSummary {
  dir: string;
  /** Rows of the embedding table (config vocab_size). */
  vocabSize: number;
  /** Ids the tokenizer actually uses (≤ vocabSize). */
  tokenizerSize: number;
  bosTokenId: number;
  eosTokenId: number;
  /** Every file written, absolute paths. */
  files: string[];
}

const MODEL_TYPES: readonly SyntheticModelType[] = ['llama', 'mistral', 'qwen2', 'gpt2'];
const DTYPES: readonly DType[] = ['F32', 'F16', 'BF16'];
const TORCH_DTYPE: Record<DType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** A recipe with every default filled in. */
type FullRecipe = Required<Omit<SyntheticRecipe, 'kvSpectrumDecay' | 'shardBytes' | 'vocabSize'>> &
  Pick<SyntheticRecipe, 'kvSpectrumDecay' | 'shardBytes'> & { vocabSize: number | undefined };

/** Reads and validates a recipe JSON file. */
export async function readRecipe(file: string): Promise<SyntheticRecipe> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.promises.readFile(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw badInput(
      code === 'ENOENT' ? 'recipe file not found' : `recipe is not valid JSON (${(e as Error).message})`,
      file,
    );
  }
  return validateRecipe(raw, file);
}

/** Checks a recipe's fields and their consistency; returns it typed (defaults are not filled in). */
export function validateRecipe(raw: unknown, file?: string): SyntheticRecipe {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw badInput('recipe must be a JSON object', file);
  const r = raw as Record<string, unknown>;
  const fail = (msg: string): never => {
    throw badInput(`recipe: ${msg}`, file);
  };
  const posInt = (k: string, optional = false) => {
    if (optional && r[k] === undefined) return;
    const v = r[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
      fail(`"${k}" must be a positive integer`);
  };
  if (!MODEL_TYPES.includes(r.modelType as SyntheticModelType))
    fail(`"modelType" must be one of ${MODEL_TYPES.join(', ')}`);
  for (const k of ['hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'intermediateSize', 'maxPositions'])
    posInt(k);
  for (const k of ['headDim', 'vocabSize', 'shardBytes']) posInt(k, true);
  if (!DTYPES.includes(r.dtype as DType)) fail(`"dtype" must be one of ${DTYPES.join(', ')}`);
  if (typeof r.tie !== 'boolean') fail('"tie" must be true or false');
  if (r.qkvBias !== undefined && typeof r.qkvBias !== 'boolean') fail('"qkvBias" must be true or false');
  if (typeof r.seed !== 'number' || !Number.isSafeInteger(r.seed) || r.seed < 0) {
    fail('"seed" must be a non-negative integer');
  }
  const decay = r.kvSpectrumDecay;
  if (decay !== undefined && (typeof decay !== 'number' || !(decay > 0 && decay <= 1))) {
    fail('"kvSpectrumDecay" must be in (0, 1]');
  }
  const recipe = r as unknown as SyntheticRecipe;
  complete(recipe, file); // consistency checks
  return recipe;
}

function complete(r: SyntheticRecipe, file?: string): FullRecipe {
  const fail = (msg: string): never => {
    throw badInput(`recipe: ${msg}`, file);
  };
  const gpt2 = r.modelType === 'gpt2';
  if (r.headDim === undefined && r.hiddenSize % r.numHeads !== 0)
    fail('hiddenSize must be divisible by numHeads');
  const headDim = r.headDim ?? r.hiddenSize / r.numHeads;
  if (r.numHeads % r.numKvHeads !== 0) fail('numHeads must be a multiple of numKvHeads');
  if (gpt2 && r.numKvHeads !== r.numHeads)
    fail('gpt2 has no grouped-query attention: numKvHeads must equal numHeads');
  if (gpt2 && headDim * r.numHeads !== r.hiddenSize) fail('gpt2 needs headDim = hiddenSize / numHeads');
  if (!gpt2 && headDim % 2 !== 0) fail('headDim must be even for rotary embeddings');
  const alwaysBias = r.modelType === 'qwen2' || gpt2;
  const qkvBias = r.qkvBias ?? alwaysBias;
  if (alwaysBias && !qkvBias) fail(`${r.modelType} always has q/k/v biases (qkvBias must be true)`);
  if (r.modelType === 'mistral' && qkvBias) fail('mistral has no attention biases (qkvBias must be false)');
  // gpt2: 256 byte symbols + <|endoftext|>; llama: 3 specials + 256 byte pieces + ▁, without which the
  // decoder could not turn byte-fallback spaces back into spaces
  const minVocab = gpt2 ? 257 : 260;
  if (r.vocabSize !== undefined && r.vocabSize < minVocab) {
    fail(`vocabSize must be at least ${minVocab} (the tokenizer's fixed symbols)`);
  }
  return { ...r, headDim, qkvBias, vocabSize: r.vocabSize };
}

/**
 * Writes a complete model folder to `dir` (created if needed): config.json, weights, tokenizer.json,
 * tokenizer_config.json and generation_config.json. Same recipe, same bytes.
 */
export async function writeSyntheticModel(
  dir: string,
  recipe: SyntheticRecipe,
): Promise<SyntheticModelSummary> {
  const r = complete(validateRecipe(recipe));
  const absDir = path.resolve(dir);
  const gpt2 = r.modelType === 'gpt2';
  const tokLimit = r.vocabSize ?? Infinity;
  const tok = gpt2 ? gpt2Tokenizer(tokLimit, r.maxPositions) : llamaTokenizer(tokLimit, r.maxPositions);
  const vocabSize = r.vocabSize ?? tok.size;

  const tensors = gpt2 ? gpt2Tensors(r, vocabSize) : llamaTensors(r, vocabSize);
  const files = await writeCheckpoint(absDir, tensors, {
    maxShardBytes: r.shardBytes,
    metadata: { format: 'pt', rankwise_synthetic_seed: String(r.seed) },
  });
  const json = (name: string, value: unknown) => {
    const p = path.join(absDir, name);
    files.push(p);
    return fs.promises.writeFile(p, JSON.stringify(value, null, 2) + '\n');
  };
  await json('config.json', configJson(r, vocabSize, tok));
  await json('tokenizer.json', tok.json);
  await json('tokenizer_config.json', tok.config);
  await json('generation_config.json', {
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
    do_sample: false,
  });
  return {
    dir: absDir,
    vocabSize,
    tokenizerSize: tok.size,
    bosTokenId: tok.bosTokenId,
    eosTokenId: tok.eosTokenId,
    files,
  };
}

// ---------------------------------------------------------------------------------------------------
// config.json

function configJson(r: FullRecipe, vocabSize: number, tok: SyntheticTokenizer): Record<string, unknown> {
  const common = {
    vocab_size: vocabSize,
    tie_word_embeddings: r.tie,
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
    torch_dtype: TORCH_DTYPE[r.dtype],
    initializer_range: 0.02,
    use_cache: true,
  };
  if (r.modelType === 'gpt2') {
    return {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      n_embd: r.hiddenSize,
      n_layer: r.numLayers,
      n_head: r.numHeads,
      n_positions: r.maxPositions,
      n_ctx: r.maxPositions,
      n_inner: r.intermediateSize === 4 * r.hiddenSize ? null : r.intermediateSize,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
      scale_attn_weights: true,
      attn_pdrop: 0,
      embd_pdrop: 0,
      resid_pdrop: 0,
      ...common,
    };
  }
  const llama = {
    hidden_size: r.hiddenSize,
    intermediate_size: r.intermediateSize,
    num_hidden_layers: r.numLayers,
    num_attention_heads: r.numHeads,
    num_key_value_heads: r.numKvHeads,
    head_dim: r.headDim,
    max_position_embeddings: r.maxPositions,
    rms_norm_eps: 1e-5,
    hidden_act: 'silu',
    rope_scaling: null,
    attention_dropout: 0,
  };
  if (r.modelType === 'llama') {
    return {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      ...llama,
      rope_theta: 10000,
      attention_bias: r.qkvBias,
      mlp_bias: false,
      ...common,
    };
  }
  if (r.modelType === 'mistral') {
    return {
      architectures: ['MistralForCausalLM'],
      model_type: 'mistral',
      ...llama,
      rope_theta: 1000000,
      sliding_window: null,
      ...common,
    };
  }
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    ...llama,
    rope_theta: 1000000,
    use_sliding_window: false,
    sliding_window: null,
    max_window_layers: r.numLayers,
    ...common,
  };
}

// ---------------------------------------------------------------------------------------------------
/**
 * Gain of the final norm. With tied embeddings the residual stream keeps the current token's own embedding,
 * so a unit gain gives that token a logit of about 2·√D and a random model NLLs far above log(vocab);
 * a small gain keeps logits O(1) and the random model's perplexity near the vocabulary size.
 */
const FINAL_NORM_GAIN = 0.1;

// Weights. Every logical tensor (named in the normalised [out, in] layout, the same for all families)
// has its own seeded stream, so a tensor's values depend only on (seed, name).

interface Scales {
  emb: number;
  /** std of the residual-writing projections, before the 1/√fan_in factor. */
  residual: number;
  /** std of small biases and norm noise. */
  noise: number;
}

function scalesFor(r: FullRecipe): Scales {
  const emb = 2 / Math.sqrt(r.hiddenSize);
  return { emb, residual: 0.5 * emb, noise: 0.02 };
}

function gaussian(r: FullRecipe, key: string, n: number, std: number, mean = 0): Float32Array {
  return normal(n, streamFor(r.seed, key), std, mean);
}

/**
 * W_K or W_V, [H_kv·d, D]: i.i.d. N(0, 1/D), or with `kvSpectrumDecay` each head block is U·diag(s)·Vᵀ
 * with random orthonormal U, V and s_i = c·decay^i, c chosen so the block's Frobenius norm equals the
 * i.i.d. one's expectation (√d) and the activations keep the same scale.
 */
function kvWeight(r: FullRecipe, key: string): Float32Array {
  const d = r.headDim;
  const D = r.hiddenSize;
  const rows = r.numKvHeads * d;
  if (r.kvSpectrumDecay === undefined) return gaussian(r, key, rows * D, 1 / Math.sqrt(D));
  const rng = streamFor(r.seed, key);
  const rank = Math.min(d, D);
  const decay = r.kvSpectrumDecay;
  let sumSq = 0;
  for (let i = 0; i < rank; i++) sumSq += decay ** (2 * i);
  const c = Math.sqrt(d / sumSq);
  const out = new Float32Array(rows * D);
  const row = new Float64Array(D);
  for (let g = 0; g < r.numKvHeads; g++) {
    const U = randomOrthonormal(d, rank, rng); // column-major d × rank
    const V = randomOrthonormal(D, rank, rng); // column-major D × rank
    for (let a = 0; a < d; a++) {
      row.fill(0);
      for (let i = 0; i < rank; i++) {
        const coef = U[i * d + a] * c * decay ** i;
        const vi = V.subarray(i * D, (i + 1) * D);
        for (let b = 0; b < D; b++) row[b] += coef * vi[b];
      }
      out.set(row, (g * d + a) * D);
    }
  }
  return out;
}

/** The per-layer weights in [out, in] layout, generated on demand. */
function layerLogical(r: FullRecipe, i: number) {
  const s = scalesFor(r);
  const D = r.hiddenSize;
  const q = r.numHeads * r.headDim;
  const kv = r.numKvHeads * r.headDim;
  const I = r.intermediateSize;
  const k = (name: string) => `layers.${i}.${name}`;
  return {
    attnNormW: () => gaussian(r, k('attn_norm.weight'), D, s.noise, 1),
    attnNormB: () => gaussian(r, k('attn_norm.bias'), D, s.noise),
    qW: () => gaussian(r, k('q.weight'), q * D, 1 / Math.sqrt(D)),
    kW: () => kvWeight(r, k('k.weight')),
    vW: () => kvWeight(r, k('v.weight')),
    qB: () => gaussian(r, k('q.bias'), q, s.noise),
    kB: () => gaussian(r, k('k.bias'), kv, s.noise),
    vB: () => gaussian(r, k('v.bias'), kv, s.noise),
    oW: () => gaussian(r, k('o.weight'), D * q, s.residual / Math.sqrt(q)),
    oB: () => gaussian(r, k('o.bias'), D, s.noise * s.residual),
    mlpNormW: () => gaussian(r, k('mlp_norm.weight'), D, s.noise, 1),
    mlpNormB: () => gaussian(r, k('mlp_norm.bias'), D, s.noise),
    gateW: () => gaussian(r, k('gate.weight'), I * D, 1 / Math.sqrt(D)),
    upW: () => gaussian(r, k('up.weight'), I * D, 1 / Math.sqrt(D)),
    upB: () => gaussian(r, k('up.bias'), I, s.noise),
    downW: () => gaussian(r, k('down.weight'), D * I, s.residual / Math.sqrt(I)),
    downB: () => gaussian(r, k('down.bias'), D, s.noise * s.residual),
  };
}

function llamaTensors(r: FullRecipe, V: number): TensorToWrite[] {
  const s = scalesFor(r);
  const D = r.hiddenSize;
  const q = r.numHeads * r.headDim;
  const kv = r.numKvHeads * r.headDim;
  const I = r.intermediateSize;
  const dtype = r.dtype;
  const t = (name: string, shape: number[], data: () => Float32Array): TensorToWrite => ({
    name,
    dtype,
    shape,
    data,
  });
  const out: TensorToWrite[] = [
    t('model.embed_tokens.weight', [V, D], () => gaussian(r, 'embed.tokens', V * D, s.emb)),
  ];
  for (let i = 0; i < r.numLayers; i++) {
    const L = layerLogical(r, i);
    const p = `model.layers.${i}.`;
    out.push(
      t(`${p}input_layernorm.weight`, [D], L.attnNormW),
      t(`${p}self_attn.q_proj.weight`, [q, D], L.qW),
      t(`${p}self_attn.k_proj.weight`, [kv, D], L.kW),
      t(`${p}self_attn.v_proj.weight`, [kv, D], L.vW),
    );
    if (r.qkvBias) {
      out.push(
        t(`${p}self_attn.q_proj.bias`, [q], L.qB),
        t(`${p}self_attn.k_proj.bias`, [kv], L.kB),
        t(`${p}self_attn.v_proj.bias`, [kv], L.vB),
      );
    }
    out.push(t(`${p}self_attn.o_proj.weight`, [D, q], L.oW));
    // llama's attention_bias covers o_proj too; qwen2's q/k/v biases do not
    if (r.qkvBias && r.modelType === 'llama') out.push(t(`${p}self_attn.o_proj.bias`, [D], L.oB));
    out.push(
      t(`${p}post_attention_layernorm.weight`, [D], L.mlpNormW),
      t(`${p}mlp.gate_proj.weight`, [I, D], L.gateW),
      t(`${p}mlp.up_proj.weight`, [I, D], L.upW),
      t(`${p}mlp.down_proj.weight`, [D, I], L.downW),
    );
  }
  out.push(t('model.norm.weight', [D], () => gaussian(r, 'final_norm.weight', D, s.noise, FINAL_NORM_GAIN)));
  if (!r.tie) out.push(t('lm_head.weight', [V, D], () => gaussian(r, 'lm_head.weight', V * D, s.emb)));
  return out;
}

/** q, k, v [D, D] in [out, in] → GPT-2's Conv1D c_attn [D, 3D] in [in, out] (columns q | k | v). */
export function fuseQkvConv1d(q: Float32Array, k: Float32Array, v: Float32Array, D: number): Float32Array {
  const w = new Float32Array(D * 3 * D);
  const stride = 3 * D;
  for (let o = 0; o < D; o++) {
    for (let i = 0; i < D; i++) {
      const src = o * D + i;
      w[i * stride + o] = q[src];
      w[i * stride + D + o] = k[src];
      w[i * stride + 2 * D + o] = v[src];
    }
  }
  return w;
}

function gpt2Tensors(r: FullRecipe, V: number): TensorToWrite[] {
  const s = scalesFor(r);
  const D = r.hiddenSize;
  const I = r.intermediateSize;
  const dtype = r.dtype;
  const t = (name: string, shape: number[], data: () => Float32Array): TensorToWrite => ({
    name,
    dtype,
    shape,
    data,
  });
  const pre = 'transformer.';
  const out: TensorToWrite[] = [
    t(`${pre}wte.weight`, [V, D], () => gaussian(r, 'embed.tokens', V * D, s.emb)),
    t(`${pre}wpe.weight`, [r.maxPositions, D], () =>
      gaussian(r, 'embed.positions', r.maxPositions * D, 0.5 * s.emb),
    ),
  ];
  for (let i = 0; i < r.numLayers; i++) {
    const L = layerLogical(r, i);
    const p = `${pre}h.${i}.`;
    out.push(
      t(`${p}ln_1.weight`, [D], L.attnNormW),
      t(`${p}ln_1.bias`, [D], L.attnNormB),
      t(`${p}attn.c_attn.weight`, [D, 3 * D], () => fuseQkvConv1d(L.qW(), L.kW(), L.vW(), D)),
      t(`${p}attn.c_attn.bias`, [3 * D], () => concat(L.qB(), L.kB(), L.vB())),
      t(`${p}attn.c_proj.weight`, [D, D], () => transpose(L.oW(), D, D)),
      t(`${p}attn.c_proj.bias`, [D], L.oB),
      t(`${p}ln_2.weight`, [D], L.mlpNormW),
      t(`${p}ln_2.bias`, [D], L.mlpNormB),
      t(`${p}mlp.c_fc.weight`, [D, I], () => transpose(L.upW(), I, D)),
      t(`${p}mlp.c_fc.bias`, [I], L.upB),
      t(`${p}mlp.c_proj.weight`, [I, D], () => transpose(L.downW(), D, I)),
      t(`${p}mlp.c_proj.bias`, [D], L.downB),
    );
  }
  out.push(
    t(`${pre}ln_f.weight`, [D], () => gaussian(r, 'final_norm.weight', D, s.noise, FINAL_NORM_GAIN)),
    t(`${pre}ln_f.bias`, [D], () => gaussian(r, 'final_norm.bias', D, s.noise)),
  );
  if (!r.tie) out.push(t('lm_head.weight', [V, D], () => gaussian(r, 'lm_head.weight', V * D, s.emb)));
  return out;
}

function concat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A short fingerprint of a recipe, e.g. for caching a generated demo model under a stable name. */
export function recipeFingerprint(recipe: SyntheticRecipe): string {
  const keys = Object.keys(recipe).sort() as (keyof SyntheticRecipe)[];
  return fnv1a(JSON.stringify(keys.map((k) => [k, recipe[k]])))
    .toString(16)
    .padStart(8, '0');
}
