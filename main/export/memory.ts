/**
 * The memory table of the report: what the KV cache and the weights cost, before and after compression,
 * and how many sequences fit beside the weights in a memory budget. Every quantity here is in bytes (or
 * tokens, or sequences); nothing is rounded to KiB/MiB until the report formats it.
 */
import { badInput } from '../core/errors.ts';
import { sequencesThatFit } from '../core/memory.ts';
import type { MemoryTable } from '../contract/report.ts';

/** Whole sequences that fit beside the weights: main/core/memory.ts's, the one the wizard uses too. */
export { sequencesThatFit };

/** Context lengths the cache of one sequence is priced at, as in `inspect` (model/info.ts). */
export const DEFAULT_MEMORY_CONTEXTS: readonly number[] = [4096, 32768, 131072];
export const DEFAULT_CONTEXT_TOKENS = 4096;
export const DEFAULT_BATCH = 1;
/** 24 GiB: a common single-GPU card, so the concurrency figure means something without configuration. */
export const DEFAULT_MEMORY_BYTES = 24 * 2 ** 30;

export interface MemoryInputs {
  /** Bytes of K and V cache per token, over all layers and KV heads, at the checkpoint's dtype. */
  kvBytesPerToken: { original: number; compressed: number };
  /** Bytes of the weights: in the original checkpoint files, and in the exported ones. */
  weightsBytes: { original: number; compressed: number };
}

export interface MemoryOptions {
  /** Context lengths (tokens) for the per-sequence rows. */
  contexts?: readonly number[];
  /** Tokens per sequence for the totals and the concurrency figure. */
  contextTokens?: number;
  /** Sequences held at once for the totals. */
  batch?: number;
  /** Memory budget (bytes) the concurrency figure fills. */
  memoryBytes?: number;
}

function positiveInteger(name: string, value: number): number {
  // Safe integers only: beyond 2^53 byte counts stop being exact and the floor below would lie.
  if (!Number.isSafeInteger(value) || value < 1) {
    throw badInput(`memory table: ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

export function memoryTable(inputs: MemoryInputs, options: MemoryOptions = {}): MemoryTable {
  const kvOriginal = positiveInteger('original KV bytes per token', inputs.kvBytesPerToken.original);
  const kvCompressed = positiveInteger('compressed KV bytes per token', inputs.kvBytesPerToken.compressed);
  const weightsOriginal = positiveInteger('original weights bytes', inputs.weightsBytes.original);
  const weightsCompressed = positiveInteger('compressed weights bytes', inputs.weightsBytes.compressed);
  const contexts = options.contexts ?? DEFAULT_MEMORY_CONTEXTS;
  if (contexts.length === 0) throw badInput('memory table: give at least one context length');
  for (const tokens of contexts) positiveInteger('a context length', tokens);
  const contextTokens = positiveInteger('contextTokens', options.contextTokens ?? DEFAULT_CONTEXT_TOKENS);
  const batch = positiveInteger('batch', options.batch ?? DEFAULT_BATCH);
  const memoryBytes = positiveInteger('memoryBytes', options.memoryBytes ?? DEFAULT_MEMORY_BYTES);

  const perSequenceOriginal = contextTokens * kvOriginal;
  const perSequenceCompressed = contextTokens * kvCompressed;
  return {
    kvBytesPerToken: { original: kvOriginal, compressed: kvCompressed },
    perSequence: contexts.map((tokens) => ({
      tokens,
      kvBytesOriginal: tokens * kvOriginal,
      kvBytesCompressed: tokens * kvCompressed,
    })),
    weightsBytes: { original: weightsOriginal, compressed: weightsCompressed },
    totals: {
      contextTokens,
      batch,
      original: weightsOriginal + batch * perSequenceOriginal,
      compressed: weightsCompressed + batch * perSequenceCompressed,
    },
    concurrency: {
      memoryBytes,
      contextTokens,
      sequencesOriginal: sequencesThatFit(memoryBytes, weightsOriginal, perSequenceOriginal),
      sequencesCompressed: sequencesThatFit(memoryBytes, weightsCompressed, perSequenceCompressed),
    },
  };
}
