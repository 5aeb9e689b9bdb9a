/**
 * The architecture registry: `model_type` → the adapter that knows its config keys, tensor names and
 * layouts. One table drives both "is this model supported?" and the loading code.
 */
import { badInput, unsupportedModel } from '../../core/errors.ts';
import type { Checkpoint } from '../checkpoint.ts';
import type { ArchFamily, EmbeddingWeights, LayerWeights, ModelSpec } from '../types.ts';
import type { ConfigFields, ExpectedTensor, FloatTensor } from './common.ts';
import { gpt2Adapter } from './gpt2.ts';
import { llamaAdapter } from './llama.ts';

/** What an adapter derives from config.json alone; dtype and special tokens are settled in config.ts. */
export type ArchSpec = Omit<ModelSpec, 'dtype' | 'bosTokenId' | 'eosTokenId'>;

export interface ArchAdapter {
  readonly family: ArchFamily;
  readonly modelTypes: readonly string[];
  /** Validates config.json and normalises it. Errors name the field (bad input) or feature (unsupported). */
  parseConfig(cfg: ConfigFields, modelType: string): ArchSpec;
  /** A layer tensor whose dtype is the checkpoint's compute dtype. */
  dtypeProbe(ckpt: Checkpoint): string;
  /** Every tensor the spec requires, with its stored shape. */
  expectedTensors(ckpt: Checkpoint, spec: ModelSpec): ExpectedTensor[];
  /** Header-only check of the whole checkpoint: required tensors and shapes, no stray biases. */
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
   * Layer i's q/k/v/o projections (possibly narrowed) as this architecture stores them; the export
   * writes these in place of the original tensors of the same names.
   */
  attentionTensors(ckpt: Checkpoint, spec: ModelSpec, layer: number, w: LayerWeights): FloatTensor[];
}

const ADAPTERS: readonly ArchAdapter[] = [llamaAdapter, gpt2Adapter];

/** Every `model_type` Rankwise loads. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = ADAPTERS.flatMap((a) => a.modelTypes);

export function adapterFor(modelType: unknown, file?: string): ArchAdapter {
  if (typeof modelType !== 'string' || modelType === '') {
    throw badInput('config has no "model_type" string', file);
  }
  const a = ADAPTERS.find((x) => x.modelTypes.includes(modelType));
  if (!a) {
    throw unsupportedModel(
      `model_type "${modelType}" is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
      file,
    );
  }
  return a;
}
