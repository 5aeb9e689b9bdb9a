/**
 * What the compression is worth in memory: the cache of `batch` sequences of `contextTokens` each, before
 * and after; how much that saves; and how many whole sequences fit beside the weights in a given memory.
 */
import type { ModelCard } from '../../main/contract/index.ts';
import {
  cacheBytes,
  dtypeBytes,
  sequencesThatFit as fitting,
  weightsBytesAt,
} from '../../main/core/memory.ts';

export { cacheBytes, dtypeBytes };

/** The checkpoint's weights at its own dtype (the export changes them only slightly: k/v projections). */
export function weightsBytes(card: Pick<ModelCard, 'parameters' | 'dtype'>): number {
  return weightsBytesAt(card.parameters, card.dtype);
}

export interface MemoryInputs {
  perToken: { original: number; compressed: number };
  weightsBytes: number;
  contextTokens: number;
  batch: number;
  /** Memory of the device the model would serve from (a GPU, say). */
  memoryBytes: number;
}

export interface MemoryFigures {
  cache: { original: number; compressed: number };
  saved: number;
  totals: { original: number; compressed: number };
  sequences: { original: number; compressed: number; extra: number };
  /** Compressed cache over original. */
  kept: number;
}

/** Whole sequences of `contextTokens` whose cache fits in what the weights leave of `memoryBytes` (main/core/memory.ts). */
export function sequencesThatFit(
  memoryBytes: number,
  weights: number,
  perToken: number,
  contextTokens: number,
): number {
  return fitting(memoryBytes, weights, perToken * contextTokens);
}

export function memoryFigures(i: MemoryInputs): MemoryFigures {
  const original = cacheBytes(i.perToken.original, i.contextTokens, i.batch);
  const compressed = cacheBytes(i.perToken.compressed, i.contextTokens, i.batch);
  const fitOriginal = sequencesThatFit(i.memoryBytes, i.weightsBytes, i.perToken.original, i.contextTokens);
  const fitCompressed = sequencesThatFit(
    i.memoryBytes,
    i.weightsBytes,
    i.perToken.compressed,
    i.contextTokens,
  );
  return {
    cache: { original, compressed },
    saved: original - compressed,
    totals: { original: i.weightsBytes + original, compressed: i.weightsBytes + compressed },
    sequences: { original: fitOriginal, compressed: fitCompressed, extra: fitCompressed - fitOriginal },
    kept: i.perToken.original > 0 ? i.perToken.compressed / i.perToken.original : 1,
  };
}

export interface StackedBar {
  which: 'original' | 'compressed';
  weights: { x: number; width: number };
  cache: { x: number; width: number };
}

/** Weights and cache side by side, before and after, on one shared scale of `width`. */
export function weightsVsCache(fig: MemoryFigures, weights: number, width: number): StackedBar[] {
  const max = Math.max(fig.totals.original, fig.totals.compressed, 1);
  const w = (weights / max) * width;
  return (['original', 'compressed'] as const).map((which) => ({
    which,
    weights: { x: 0, width: w },
    cache: { x: w, width: (fig.cache[which] / max) * width },
  }));
}
