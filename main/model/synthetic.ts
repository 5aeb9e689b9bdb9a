/**
 * Synthetic checkpoints: complete Hugging Face model folders with seeded random weights, for the demo
 * (the demo model is generated, never downloaded) and for tests of every architecture.
 *
 * Weights are random but scaled so a forward pass stays well conditioned over many layers: every linear
 * reading a normalised input has std 1/√fan_in (outputs O(1)); the two projections writing into the
 * residual stream (o, down; post-norm gains, where a block has them) are scaled by half the stream's std
 * (the embedding's, times any embedding scale), so each layer nudges the stream rather than swamping
 * it; norm gains are 1 with small noise; token embeddings have std 2/√D so tied logits have std ≈ 2
 * (peaked enough to be interesting, far from saturating). Optionally each KV head's W_K and W_V get a
 * geometrically decaying spectrum, so low-rank KV compression has real structure to find.
 *
 * Nothing here is family-specific: the family's adapter writes its config.json keys, the config is parsed
 * like any other, and the adapter's codec names, fuses and lays out each normalised array the recipe
 * generates. A family whose adapter has `synthetic` support can be generated.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { badInput, RankwiseError } from '../core/errors.ts';
import type { SyntheticShape, SyntheticSupport } from './arch/adapter.ts';
import { encodeTensor } from './arch/codec.ts';
import type { Slot } from './arch/codec.ts';
import { adapterFor, SYNTHETIC_MODEL_TYPES } from './arch/registry.ts';
import { writeCheckpoint } from './checkpoint.ts';
import { specFromConfig } from './config.ts';
import { fnv1a, normal, randomOrthonormal, streamFor } from './prng.ts';
import type { TensorToWrite } from './safetensors.ts';
import { gpt2Tokenizer, llamaTokenizer } from './synthetic-tokenizer.ts';
import type { SyntheticTokenizer } from './synthetic-tokenizer.ts';
import type { DType, ModelSpec } from './types.ts';

/** A `model_type` whose adapter can write synthetic checkpoints (SYNTHETIC_MODEL_TYPES). */
export type SyntheticModelType = string;

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
  /**
   * q/k/v biases. Default: the family's usual choice (true for qwen2 and gpt2, which always have them;
   * false for the others, where it sets attention_bias).
   */
  qkvBias?: boolean;
  seed: number;
  /** When set, singular values of every KV head's W_K and W_V block are ∝ decay^i (0 < decay ≤ 1). */
  kvSpectrumDecay?: number;
  /** Shard the weights so no file holds more than this many bytes of tensor data. */
  shardBytes?: number;
  /**
   * More config.json keys, over the family's own (rope_scaling, sliding_window, mlp_bias, hidden_act,
   * soft-capping …). The weights follow the config they make: a config with mlp_bias gets MLP biases.
   */
  config?: Record<string, unknown>;
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

const DTYPES: readonly DType[] = ['F32', 'F16', 'BF16'];
const TORCH_DTYPE: Record<DType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** A recipe with every default filled in. */
type FullRecipe = Required<
  Omit<SyntheticRecipe, 'kvSpectrumDecay' | 'shardBytes' | 'vocabSize' | 'qkvBias'>
> &
  Pick<SyntheticRecipe, 'kvSpectrumDecay' | 'shardBytes' | 'qkvBias'> & { vocabSize: number | undefined };

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
  if (typeof r.modelType !== 'string' || !SYNTHETIC_MODEL_TYPES.includes(r.modelType))
    fail(`"modelType" must be one of ${SYNTHETIC_MODEL_TYPES.join(', ')}`);
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
  const extra = r.config;
  if (extra !== undefined && (typeof extra !== 'object' || extra === null || Array.isArray(extra))) {
    fail('"config" must be an object of config.json keys');
  }
  const recipe = r as unknown as SyntheticRecipe;
  complete(recipe, file); // consistency checks
  return recipe;
}

function supportOf(modelType: string): SyntheticSupport {
  const s = adapterFor(modelType).synthetic;
  if (!s) throw new RankwiseError('internal', `${modelType} has no synthetic writer`);
  return s;
}

/**
 * Fills the defaults and checks the recipe against its family: the config it makes must parse, and
 * describe the shape the recipe asks for.
 */
function complete(r: SyntheticRecipe, file?: string): FullRecipe {
  const fail = (msg: string): never => {
    throw badInput(`recipe: ${msg}`, file);
  };
  if (r.headDim === undefined && r.hiddenSize % r.numHeads !== 0)
    fail('hiddenSize must be divisible by numHeads');
  const headDim = r.headDim ?? r.hiddenSize / r.numHeads;
  if (r.numHeads % r.numKvHeads !== 0) fail('numHeads must be a multiple of numKvHeads');
  const support = supportOf(r.modelType);
  // gpt2: 256 byte symbols + <|endoftext|>; llama: 3 specials + 256 byte pieces + ▁, without which the
  // decoder could not turn byte-fallback spaces back into spaces
  const minVocab = support.tokenizer === 'gpt2' ? 257 : 260;
  if (r.vocabSize !== undefined && r.vocabSize < minVocab) {
    fail(`vocabSize must be at least ${minVocab} (the tokenizer's fixed symbols)`);
  }
  const full: FullRecipe = { ...r, headDim, vocabSize: r.vocabSize, config: r.config ?? {} };
  const vocab = r.vocabSize ?? minVocab;
  const config = configJson(full, support, vocab, { bosTokenId: 1, eosTokenId: 2 }, fail);
  let spec: ModelSpec;
  try {
    spec = specFromConfig(config, 'config.json').spec;
  } catch (e) {
    if (!(e instanceof RankwiseError)) throw e;
    return fail(`the ${r.modelType} config it makes is refused: ${e.message}`);
  }
  const want: [keyof ModelSpec, unknown][] = [
    ['hiddenSize', r.hiddenSize],
    ['numLayers', r.numLayers],
    ['numHeads', r.numHeads],
    ['numKvHeads', r.numKvHeads],
    ['headDim', headDim],
    ['intermediateSize', r.intermediateSize],
    ['maxPositions', r.maxPositions],
    ['vocabSize', vocab],
    ['tieWordEmbeddings', r.tie],
    ['dtype', r.dtype],
  ];
  for (const [k, v] of want) {
    if (spec[k] !== v) fail(`"config" gives ${k} ${String(spec[k])} where the recipe says ${String(v)}`);
  }
  return full;
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
  const adapter = adapterFor(r.modelType);
  const support = supportOf(r.modelType);
  const tokLimit = r.vocabSize ?? Infinity;
  const tok =
    support.tokenizer === 'gpt2'
      ? gpt2Tokenizer(tokLimit, r.maxPositions)
      : llamaTokenizer(tokLimit, r.maxPositions);
  const vocabSize = r.vocabSize ?? tok.size;

  const config = configJson(r, support, vocabSize, tok, (msg) => {
    throw badInput(`recipe: ${msg}`);
  });
  const { spec } = specFromConfig(config, path.join(absDir, 'config.json'));
  // the adapter's codec names and lays out every tensor; the values depend only on (seed, field)
  const tensors: TensorToWrite[] = adapter.plans(spec).map((plan) => ({
    name: plan.name,
    dtype: r.dtype,
    shape: plan.shape,
    data: () => encodeTensor(plan, (slot) => weights(r, spec, slot)),
  }));
  const files = await writeCheckpoint(absDir, tensors, {
    maxShardBytes: r.shardBytes,
    metadata: { format: 'pt', rankwise_synthetic_seed: String(r.seed) },
  });
  const json = (name: string, value: unknown) => {
    const p = path.join(absDir, name);
    files.push(p);
    return fs.promises.writeFile(p, JSON.stringify(value, null, 2) + '\n');
  };
  await json('config.json', config);
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

/** The family's keys (from its adapter), the ones every model has, then the recipe's own. */
function configJson(
  r: FullRecipe,
  support: SyntheticSupport,
  vocabSize: number,
  tok: Pick<SyntheticTokenizer, 'bosTokenId' | 'eosTokenId'>,
  fail: (msg: string) => never,
): Record<string, unknown> {
  const shape: SyntheticShape = {
    hiddenSize: r.hiddenSize,
    numLayers: r.numLayers,
    numHeads: r.numHeads,
    numKvHeads: r.numKvHeads,
    headDim: r.headDim,
    intermediateSize: r.intermediateSize,
    maxPositions: r.maxPositions,
    qkvBias: r.qkvBias,
  };
  const family = support.config(shape, r.modelType, fail);
  return {
    architectures: family.architectures,
    model_type: r.modelType,
    ...family,
    vocab_size: vocabSize,
    tie_word_embeddings: r.tie,
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
    torch_dtype: TORCH_DTYPE[r.dtype],
    initializer_range: 0.02,
    use_cache: true,
    ...r.config,
  };
}

// ---------------------------------------------------------------------------------------------------
/**
 * Gain of the final norm. With tied embeddings the residual stream keeps the current token's own embedding,
 * so a unit gain gives that token a logit of about 2·√D and a random model NLLs far above log(vocab);
 * a small gain keeps logits O(1) and the random model's perplexity near the vocabulary size.
 */
const FINAL_NORM_GAIN = 0.1;

// Weights. Every normalised array (a LayerWeights or EmbeddingWeights field, [out, in]) has its own
// seeded stream, so its values depend only on (seed, field) and not on how a family stores or fuses it.

interface Scales {
  emb: number;
  /** std of the residual-writing projections (and gain of post-norms), before any 1/√fan_in factor. */
  residual: number;
  /** std of small biases and norm noise. */
  noise: number;
}

/** Relative to the residual stream, which a scaled embedding (Gemma: ×√D) makes larger. */
function scalesFor(r: FullRecipe, spec: ModelSpec): Scales {
  const emb = 2 / Math.sqrt(r.hiddenSize);
  return { emb, residual: 0.5 * emb * spec.block.embedScale, noise: 0.02 };
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

/** Stream names of the layer fields (kept from the first synthetic models, so their bytes stay put). */
const STREAM: Readonly<Record<string, string>> = {
  attnNorm: 'attn_norm',
  mlpNorm: 'mlp_norm',
  qNorm: 'q_norm',
  kNorm: 'k_norm',
  postAttnNorm: 'post_attn_norm',
  postMlpNorm: 'post_mlp_norm',
};

/** The values of one normalised array. */
function weights(r: FullRecipe, spec: ModelSpec, slot: Slot): Float32Array {
  const s = scalesFor(r, spec);
  const n = slot.rows * (slot.cols ?? 1);
  const offset = spec.block.norm.offset; // a (1 + w) norm stores its gain minus one
  if (slot.layer === null) {
    switch (slot.field) {
      case 'tokens':
        return gaussian(r, 'embed.tokens', n, s.emb);
      case 'positions':
        return gaussian(r, 'embed.positions', n, 0.5 * s.emb);
      case 'lmHead':
        return gaussian(r, 'lm_head.weight', n, s.emb);
      default:
        return slot.kind === 'weight'
          ? gaussian(r, 'final_norm.weight', n, s.noise, FINAL_NORM_GAIN - offset)
          : gaussian(r, 'final_norm.bias', n, s.noise);
    }
  }
  const key = `layers.${slot.layer}.${STREAM[slot.field] ?? slot.field}.${slot.kind}`;
  const residual = slot.field === 'o' || slot.field === 'down';
  switch (slot.field) {
    case 'attnNorm':
    case 'mlpNorm':
    case 'qNorm':
    case 'kNorm':
      return slot.kind === 'weight' ? gaussian(r, key, n, s.noise, 1 - offset) : gaussian(r, key, n, s.noise);
    case 'postAttnNorm':
    case 'postMlpNorm':
      // a post-norm sets the size of what its branch adds to the stream
      return slot.kind === 'weight'
        ? gaussian(r, key, n, s.noise, s.residual - offset)
        : gaussian(r, key, n, s.noise);
    case 'k':
    case 'v':
      if (slot.kind === 'weight') return kvWeight(r, key);
      break;
  }
  if (slot.kind === 'bias') return gaussian(r, key, n, residual ? s.noise * s.residual : s.noise);
  const fanIn = slot.cols!;
  return gaussian(r, key, n, (residual ? s.residual : 1) / Math.sqrt(fanIn));
}

/** A short fingerprint of a recipe, e.g. for caching a generated demo model under a stable name. */
export function recipeFingerprint(recipe: SyntheticRecipe): string {
  const keys = Object.keys(recipe).sort() as (keyof SyntheticRecipe)[];
  return fnv1a(JSON.stringify(keys.map((k) => [k, recipe[k]])))
    .toString(16)
    .padStart(8, '0');
}
