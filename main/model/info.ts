/**
 * The `inspect` summary of an opened model: shapes, parameter count and KV-cache sizes.
 */
import { dtypeBytes } from './dtype.ts';
import { kvElementsPerToken } from './kv-layout.ts';
import type { ModelHandle } from './model.ts';
import type { ArchFamily, ModelInfo } from '../contract/model.ts';
import type { ModelSpec } from './types.ts';

/** Context lengths the summary prices the cache at. */
export const KV_REPORT_CONTEXTS = [4096, 32768, 131072] as const;

/**
 * 2 (K and V) · L · H_kv · d · bytes per element; for a Rankwise checkpoint Σ over layers of
 * H_kv · (r_k + r_v) · bytes, what its cache really holds.
 */
export function kvBytesPerToken(spec: ModelSpec): number {
  return kvElementsPerToken(spec.kvCompression, spec) * dtypeBytes(spec.dtype);
}

/** The cache of the same model before compression. */
export function originalKvBytesPerToken(spec: ModelSpec): number {
  return kvElementsPerToken(undefined, spec) * dtypeBytes(spec.dtype);
}

/**
 * The card's graph family: every RoPE decoder is computed by the llama-style block, and only GPT-2's
 * learned positions call for the other one.
 */
function archFamily(spec: ModelSpec): ArchFamily {
  return spec.block.rope ? 'llama' : 'gpt2';
}

export function modelInfo(handle: ModelHandle): ModelInfo {
  const { spec, checkpoint, adapter } = handle;
  let parameters = 0;
  for (const name of checkpoint.names()) {
    if (!adapter.isParameter(name)) continue;
    // a tied checkpoint that still stores the head holds a copy of the embedding, not new parameters
    if (spec.tieWordEmbeddings && name === adapter.lmHeadName) continue;
    parameters += checkpoint.info(name).shape.reduce((a, b) => a * b, 1);
  }
  const perToken = kvBytesPerToken(spec);
  return {
    modelType: spec.modelType,
    family: archFamily(spec),
    layers: spec.numLayers,
    heads: spec.numHeads,
    kvHeads: spec.numKvHeads,
    headDim: spec.headDim,
    hiddenSize: spec.hiddenSize,
    vocabSize: spec.vocabSize,
    maxPositions: spec.maxPositions,
    rope: spec.block.rope ? spec.block.rope.theta : null,
    qkNorm: spec.block.qkNorm,
    dtype: spec.dtype,
    parameters,
    kvBytesPerToken: perToken,
    kvBytesPerSequence: KV_REPORT_CONTEXTS.map((tokens) => ({ tokens, bytes: tokens * perToken })),
    ...(spec.kvCompression
      ? {
          kvCompression: {
            layers: spec.kvCompression.map((l) => ({ kRank: l.kRank, vRank: l.vRank, keySpace: l.keySpace })),
            originalKvBytesPerToken: originalKvBytesPerToken(spec),
          },
        }
      : {}),
  };
}
