/**
 * KV-cache and memory arithmetic shared by the engine (the report's memory table, the allocator's byte
 * counts) and the wizard (its memory panel and curves). Bytes throughout; nothing is rounded to KiB/MiB.
 */

/** Bytes per element of the dtypes the engine computes with. */
export function dtypeBytes(dtype: 'F32' | 'F16' | 'BF16'): number {
  return dtype === 'F32' ? 4 : 2;
}

/** Bytes of K and V cache per token of an uncompressed model: 2 · L · H_kv · d · bytes. */
export function fullKvBytesPerToken(layers: number, kvHeads: number, headDim: number, bytes: number): number {
  return 2 * layers * kvHeads * headDim * bytes;
}

/** Share of a layer's full cache that per-head ranks (kRank, vRank) keep: (kRank + vRank) / 2d. */
export function keptFraction(kRank: number, vRank: number, headDim: number): number {
  return (kRank + vRank) / (2 * headDim);
}

/** The cache of `batch` sequences of `contextTokens` each. */
export function cacheBytes(perToken: number, contextTokens: number, batch = 1): number {
  return perToken * contextTokens * batch;
}

/** Weights of `parameters` parameters stored at `dtype`. */
export function weightsBytesAt(parameters: number, dtype: 'F32' | 'F16' | 'BF16'): number {
  return parameters * dtypeBytes(dtype);
}

/**
 * How many caches of `bytesPerSequence` bytes fit in `memoryBytes` once `weightsBytes` are resident:
 * ⌊(memory − weights) / bytesPerSequence⌋, and 0 when the weights alone do not fit (or a sequence costs
 * nothing, which would make the count meaningless).
 */
export function sequencesThatFit(
  memoryBytes: number,
  weightsBytes: number,
  bytesPerSequence: number,
): number {
  const free = memoryBytes - weightsBytes;
  if (!(free > 0) || !(bytesPerSequence > 0)) return 0;
  // The quotient of two exact integers is rounded before the floor; settle the edge in integers instead.
  let n = Math.floor(free / bytesPerSequence);
  while (n > 0 && n * bytesPerSequence > free) n -= 1;
  while ((n + 1) * bytesPerSequence <= free) n += 1;
  return n;
}

/** Per-head rank grid: multiples of max(1, ⌊d/8⌋) up to d, d included (ARCHITECTURE.md §6). */
export function rankGrid(d: number): number[] {
  const step = Math.max(1, Math.floor(d / 8));
  const grid: number[] = [];
  for (let r = step; r < d; r += step) grid.push(r);
  grid.push(d);
  return grid;
}
