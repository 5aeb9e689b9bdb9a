/**
 * The architecture registry: `model_type` → the adapter that knows its config keys, tensor names and
 * layouts. One table drives "is this model supported?", the loading code and the synthetic writer; a new
 * family is its adapter file plus one entry here.
 */
import { badInput, unsupportedModel } from '../../core/errors.ts';
import type { ArchAdapter } from './adapter.ts';
import { gemma2Adapter } from './gemma2.ts';
import { gpt2Adapter } from './gpt2.ts';
import { llamaAdapter } from './llama.ts';
import { phi3Adapter } from './phi3.ts';
import { qwen3Adapter } from './qwen3.ts';

export type { ArchAdapter, ArchSpec } from './adapter.ts';

const ADAPTERS: readonly ArchAdapter[] = [
  llamaAdapter,
  gpt2Adapter,
  qwen3Adapter,
  phi3Adapter,
  gemma2Adapter,
];

/** Every `model_type` Rankwise loads. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = ADAPTERS.flatMap((a) => a.modelTypes);

/** Every `model_type` the synthetic writer can generate. */
export const SYNTHETIC_MODEL_TYPES: readonly string[] = ADAPTERS.filter((a) => a.synthetic).flatMap(
  (a) => a.modelTypes,
);

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
