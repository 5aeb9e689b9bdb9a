/**
 * What the RoPE decoder families (llama, mistral, qwen2, qwen3, phi3, gemma2) share: the attention shape
 * and the common config keys, the activation names transformers' ACT2FN maps to the functions the
 * recipe implements, sliding windows, and the tensor names of their embeddings. Each family's adapter
 * starts from `parseDecoder` and sets what is particular to it.
 */
import { badInput, unsupportedModel } from '../../core/errors.ts';
import type { BlockRecipe } from '../types.ts';
import type { ArchSpec, SyntheticShape } from './adapter.ts';
import type { EmbeddingField, Module } from './codec.ts';
import { MAX_NORM_EPS } from './common.ts';
import type { ConfigFields } from './common.ts';
import { resolveRope } from './rope.ts';

/** ACT2FN names → the recipe's activations. gelu_new and gelu_pytorch_tanh are the same tanh form. */
const ACTIVATIONS: Readonly<Record<string, BlockRecipe['mlp']['act']>> = {
  silu: 'silu',
  swish: 'silu',
  gelu: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
};

/** The activation named by config `key` (hidden_act, hidden_activation, activation_function). */
export function parseActivation(cfg: ConfigFields, key: string, fallback: string): BlockRecipe['mlp']['act'] {
  const name = cfg.str(key, fallback);
  if (!Object.hasOwn(ACTIVATIONS, name)) {
    throw unsupportedModel(
      `${key} "${name}" is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`,
      cfg.file,
    );
  }
  return ACTIVATIONS[name];
}

export interface DecoderDefaults {
  /** head_dim when the config has none (Qwen3: 128, Gemma 2: 256); hidden_size / heads otherwise. */
  headDim?: number;
  tieWordEmbeddings: boolean;
  /** The activation's config key and its default (`hidden_act`, silu). */
  act?: { key: string; fallback: string };
  rmsNormEps?: number;
  ropeTheta?: number;
}

/**
 * The plain pre-norm RoPE decoder every family here starts from: RMSNorm, gated MLP, no biases, 1/√d,
 * full causal attention on every layer.
 */
export function parseDecoder(cfg: ConfigFields, modelType: string, defaults: DecoderDefaults): ArchSpec {
  const file = cfg.file;
  const hiddenSize = cfg.int('hidden_size');
  const numLayers = cfg.int('num_hidden_layers');
  const numHeads = cfg.int('num_attention_heads');
  const numKvHeads = cfg.optInt('num_key_value_heads', numHeads);
  const intermediateSize = cfg.int('intermediate_size');
  const vocabSize = cfg.int('vocab_size');
  const maxPositions = cfg.int('max_position_embeddings');
  if (!cfg.has('head_dim') && defaults.headDim === undefined && hiddenSize % numHeads !== 0) {
    throw badInput(
      `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} and there is no head_dim`,
      file,
    );
  }
  const headDim = cfg.optInt('head_dim', defaults.headDim ?? hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw badInput(
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
      file,
    );
  }
  if (headDim % 2 !== 0) throw badInput(`head_dim ${headDim} must be even for rotary embeddings`, file);
  const act = defaults.act ?? { key: 'hidden_act', fallback: 'silu' };
  const eps = cfg.positiveNum('rms_norm_eps', defaults.rmsNormEps ?? 1e-6, MAX_NORM_EPS);
  return {
    modelType,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize,
    vocabSize,
    maxPositions,
    tieWordEmbeddings: cfg.bool('tie_word_embeddings', defaults.tieWordEmbeddings),
    block: {
      norm: { kind: 'rms', eps, offset: 0 },
      postNorms: false,
      qkNorm: false,
      mlp: { gated: true, act: parseActivation(cfg, act.key, act.fallback) },
      bias: { qkv: false, o: false, mlp: false },
      rope: resolveRope(cfg, headDim, maxPositions, defaults.ropeTheta),
      queryScale: 1 / Math.sqrt(headDim),
      attnSoftcap: null,
      finalSoftcap: null,
      embedScale: 1,
      slidingWindow: new Array<number | null>(numLayers).fill(null),
    },
  };
}

/**
 * A config number where `null` means "off" and absence means the class default (transformers treats
 * the two differently for sliding_window and the soft-capping keys).
 */
export function nullableNumber(cfg: ConfigFields, key: string, fallback: number | null): number | null {
  if (!(key in cfg.raw)) return fallback;
  if (cfg.raw[key] === null) return null;
  return cfg.positiveNum(key, 1);
}

/** A window in tokens: a positive integer, null when off. */
export function windowSize(cfg: ConfigFields, fallback: number | null): number | null {
  if (!('sliding_window' in cfg.raw)) return fallback;
  if (cfg.raw.sliding_window === null) return null;
  return cfg.optInt('sliding_window', 1);
}

/** Mistral, Phi-3: one window on every layer when the config sets one. */
export function uniformWindows(
  cfg: ConfigFields,
  numLayers: number,
  fallback: number | null,
): (number | null)[] {
  return new Array<number | null>(numLayers).fill(windowSize(cfg, fallback));
}

/**
 * `layer_types` (transformers ≥ 4.53 writes it to config.json): 'sliding_attention' or 'full_attention'
 * per layer. Absent, `derive(i)` says whether layer i slides, as the family's config class would.
 */
export function slidingLayers(
  cfg: ConfigFields,
  numLayers: number,
  derive: (i: number) => boolean,
): boolean[] {
  const types = cfg.get('layer_types');
  if (types === undefined) return Array.from({ length: numLayers }, (_, i) => derive(i));
  if (!Array.isArray(types) || types.length !== numLayers) {
    throw badInput(`config field "layer_types" must list ${numLayers} layer types`, cfg.file);
  }
  return types.map((t, i) => {
    if (t === 'sliding_attention') return true;
    if (t === 'full_attention') return false;
    throw unsupportedModel(`layer_types[${i}] "${String(t)}" is not supported`, cfg.file);
  });
}

/**
 * Qwen2 and Qwen3, as their config classes resolve it: `sliding_window` counts only with
 * `use_sliding_window`, and then on the layers from `max_window_layers` on (or those `layer_types` names).
 */
export function qwenWindows(cfg: ConfigFields, numLayers: number): (number | null)[] {
  const use = cfg.bool('use_sliding_window', false);
  let window: number | null = null;
  if (use) {
    window = windowSize(cfg, null);
    if (window === null) {
      // the class default differs between transformers versions (4096, 32768): ask for the number
      throw unsupportedModel('use_sliding_window is true but sliding_window is not given', cfg.file);
    }
  }
  // 0 is meaningful here (every layer slides), so not read as a positive count
  const from = cfg.raw.max_window_layers === 0 ? 0 : cfg.optInt('max_window_layers', 28);
  const sliding = slidingLayers(cfg, numLayers, (i) => window !== null && i >= from);
  return sliding.map((s) => (s ? window : null));
}

/** The HF decoder's embeddings, final norm and head (`model.embed_tokens`, `model.norm`, `lm_head`). */
export const DECODER_EMBEDDINGS: readonly Module<EmbeddingField>[] = [
  { name: 'model.embed_tokens', fields: ['tokens'] },
  { name: 'model.norm', fields: ['finalNorm'] },
  { name: 'lm_head', fields: ['lmHead'] },
];

/** The HF decoders' config keys for a synthetic model of a given shape (before family keys). */
export function decoderShapeConfig(s: SyntheticShape, fail: (msg: string) => never): Record<string, unknown> {
  if (s.headDim % 2 !== 0) fail('headDim must be even for rotary embeddings');
  return {
    hidden_size: s.hiddenSize,
    intermediate_size: s.intermediateSize,
    num_hidden_layers: s.numLayers,
    num_attention_heads: s.numHeads,
    num_key_value_heads: s.numKvHeads,
    head_dim: s.headDim,
    max_position_embeddings: s.maxPositions,
    rms_norm_eps: 1e-5,
    hidden_act: 'silu',
    rope_scaling: null,
    attention_dropout: 0,
  };
}
