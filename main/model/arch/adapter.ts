/**
 * What an architecture adapter is: a tensor codec (names and layouts, arch/codec.ts) and a config parser
 * producing the spec and its block recipe. `defineArch` derives everything the engine calls from those two,
 * so an adapter file holds only what is particular to its family.
 */
import { unsupportedModel } from '../../core/errors.ts';
import type { Checkpoint } from '../checkpoint.ts';
import type { EmbeddingWeights, LayerWeights, ModelSpec } from '../types.ts';
import * as codecs from './codec.ts';
import type { ArchCodec, TensorPlan } from './codec.ts';
import type { ConfigFields, ExpectedTensor, FloatTensor } from './common.ts';

/** What an adapter derives from config.json alone; dtype and special tokens are settled in config.ts. */
export type ArchSpec = Omit<ModelSpec, 'dtype' | 'bosTokenId' | 'eosTokenId'>;

/** A synthetic model's shape, as a recipe gives it (synthetic.ts). */
export interface SyntheticShape {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  /** q/k/v biases asked for; undefined for the family's usual choice. */
  qkvBias?: boolean;
}

export interface SyntheticSupport {
  /** Which synthetic tokenizer the family ships with (byte-level BPE or SentencePiece-style). */
  tokenizer: 'gpt2' | 'llama';
  /**
   * The architecture's own config.json keys for a model of this shape, as its HF config class writes them
   * (the writer adds vocabulary, tying, dtype and special tokens). `fail` refuses a shape the family
   * cannot have.
   */
  config(shape: SyntheticShape, modelType: string, fail: (msg: string) => never): Record<string, unknown>;
}

export interface ArchDefinition {
  modelTypes: readonly string[];
  codec: ArchCodec;
  /** Validates config.json and describes the block. Errors name the field (bad input) or key (unsupported). */
  parseConfig(cfg: ConfigFields, modelType: string): ArchSpec;
  /** Keys of COMPUTATION_KEYS this model type reads itself; the others are refused when set. */
  handles?(modelType: string): readonly string[];
  /** False for stored buffers that are not parameters (causal masks, RoPE frequency tables). */
  isParameter?(name: string): boolean;
  synthetic?: SyntheticSupport;
}

export interface ArchAdapter {
  readonly modelTypes: readonly string[];
  readonly codec: ArchCodec;
  readonly synthetic?: SyntheticSupport;
  /** Validates config.json and normalises it. Errors name the field (bad input) or feature (unsupported). */
  parseConfig(cfg: ConfigFields, modelType: string): ArchSpec;
  /** A layer tensor whose dtype is the checkpoint's compute dtype. */
  dtypeProbe(ckpt: Checkpoint, spec: ModelSpec): string;
  /** Every tensor the spec requires, with its stored shape. */
  expectedTensors(ckpt: Checkpoint, spec: ModelSpec): ExpectedTensor[];
  /** Header-only check of the whole checkpoint: required tensors and shapes, no stray parameters. */
  checkCheckpoint(ckpt: Checkpoint, spec: ModelSpec): void;
  /** False for stored buffers that are not parameters (causal masks, RoPE frequency tables). */
  isParameter(name: string): boolean;
  /** The separate output-projection tensor, counted only when embeddings are not tied. */
  lmHeadName: string;
  loadLayer(ckpt: Checkpoint, spec: ModelSpec, layer: number): Promise<LayerWeights>;
  loadEmbeddings(ckpt: Checkpoint, spec: ModelSpec): Promise<EmbeddingWeights>;
  /** Name prefix of layer i's attention module, where a compressed checkpoint keeps `k_basis`/`q_basis`. */
  attentionPrefix(ckpt: Checkpoint, layer: number): string;
  /**
   * Layer i's attention tensors (q/k/v/o, possibly narrowed, and anything else under the attention
   * prefix) as this architecture stores them; the export writes these in place of the originals.
   */
  attentionTensors(ckpt: Checkpoint, spec: ModelSpec, layer: number, w: LayerWeights): FloatTensor[];
  /** Layer i as stored, every tensor (`root` defaults to the prefix new checkpoints get). */
  encodeLayer(spec: ModelSpec, layer: number, w: LayerWeights, root?: string): FloatTensor[];
  /** Embeddings, final norm and untied head as stored. */
  encodeEmbeddings(spec: ModelSpec, e: EmbeddingWeights, root?: string): FloatTensor[];
  /** Every tensor of a whole model, in the order a writer lays them out. */
  plans(spec: ModelSpec, root?: string): TensorPlan[];
}

/**
 * Keys that change how a block computes in some family. A family that does not read a key refuses it by
 * name when it carries a non-neutral value, rather than run a model that expects it without it.
 */
const COMPUTATION_KEYS: Readonly<Record<string, (v: unknown) => boolean>> = {
  attn_logit_softcapping: (v) => v === null || v === undefined,
  final_logit_softcapping: (v) => v === null || v === undefined,
  query_pre_attn_scalar: (v) => v === null || v === undefined,
  use_sliding_window: (v) => v === null || v === undefined || v === false,
  use_bidirectional_attention: (v) => v === null || v === undefined || v === false,
};

/** Refuses every set key of COMPUTATION_KEYS but those `handled`. */
export function refuseForeignKeys(cfg: ConfigFields, modelType: string, handled: readonly string[]): void {
  for (const [key, neutral] of Object.entries(COMPUTATION_KEYS)) {
    if (handled.includes(key) || neutral(cfg.raw[key])) continue;
    throw unsupportedModel(
      `${key} ${JSON.stringify(cfg.raw[key])} is not supported for model_type "${modelType}"`,
      cfg.file,
    );
  }
}

export function defineArch(def: ArchDefinition): ArchAdapter {
  const { codec } = def;
  const rootOf = (ckpt: Checkpoint) => codec.root((n) => ckpt.has(n));
  const isParameter = def.isParameter ?? (() => true);
  const lmHead = codec.embeddingModules.find((m) => m.fields.includes('lmHead'));
  const attentionPrefix = (ckpt: Checkpoint, i: number) =>
    `${codecs.layerPrefix(codec, rootOf(ckpt), i)}${codec.attention}`;
  return {
    modelTypes: def.modelTypes,
    codec,
    synthetic: def.synthetic,
    parseConfig(cfg, modelType) {
      if (cfg.has('quantization_config')) {
        throw unsupportedModel('quantized checkpoints (quantization_config) are not supported', cfg.file);
      }
      refuseForeignKeys(cfg, modelType, def.handles?.(modelType) ?? []);
      const spec = def.parseConfig(cfg, modelType);
      codecs.checkCoverage(codec, spec);
      return spec;
    },
    dtypeProbe(ckpt, spec) {
      const plans = codecs.layerPlans(codec, spec, 0, rootOf(ckpt));
      const q = plans.find((p) => p.parts.some((s) => s.field === 'q' && s.kind === 'weight'));
      return (q ?? plans[0]).name;
    },
    expectedTensors: (ckpt, spec) => codecs.expectedTensors(codec, ckpt, spec),
    checkCheckpoint: (ckpt, spec) => codecs.checkCheckpoint(codec, ckpt, spec, isParameter),
    isParameter,
    lmHeadName: lmHead ? `${lmHead.unrooted ? '' : codec.writeRoot}${lmHead.name}.weight` : '',
    loadLayer: (ckpt, spec, i) => codecs.loadLayer(codec, ckpt, spec, i),
    loadEmbeddings: (ckpt, spec) => codecs.loadEmbeddings(codec, ckpt, spec),
    attentionPrefix,
    attentionTensors(ckpt, spec, i, w) {
      const prefix = attentionPrefix(ckpt, i);
      const plans = codecs.layerPlans(codec, spec, i, rootOf(ckpt)).filter((p) => p.name.startsWith(prefix));
      return codecs.encodeLayer(plans, w);
    },
    encodeLayer: (spec, i, w, root = codec.writeRoot) =>
      codecs.encodeLayer(codecs.layerPlans(codec, spec, i, root), w),
    encodeEmbeddings: (spec, e, root = codec.writeRoot) =>
      codecs.encodeEmbeddings(codecs.embeddingPlans(codec, spec, root), e),
    plans: (spec, root = codec.writeRoot) => codecs.modelPlans(codec, spec, root),
  };
}
