/**
 * KV-cache byte arithmetic, per token (methods.md §2.4). With the same per-head rank on every KV head, the
 * compressed layer caches (kRank + vRank) · H_kv elements per token; the uncompressed one 2 · H_kv · d.
 * Example (Llama-3-8B, H_kv 8, d 128, fp16): 4096 B per layer at full rank, 2048 B at kRank = vRank = 64.
 */
import { rankSum } from '../pareto.ts';
import type { CacheShape, ProfilePoint } from './types.ts';

/** kRank + vRank, a point's cost in per-head rank units (main/core/pareto.ts). */
export { rankSum };

/** Bytes per token one layer caches at this point: (kRank + vRank) · H_kv · b. */
export function pointBytes(point: Pick<ProfilePoint, 'kRank' | 'vRank'>, shape: CacheShape): number {
  return rankSum(point) * shape.kvHeads * shape.bytesPerElement;
}

/** Bytes per token of one uncompressed layer: 2 · H_kv · d · b. */
export function layerFullBytes(shape: CacheShape): number {
  return 2 * shape.kvHeads * shape.headDim * shape.bytesPerElement;
}

/**
 * The largest total rank sum whose bytes fit in `fraction` of the original cache of `layers` layers.
 * F · L · 2d is a float product, and e.g. 0.29 · 100 = 28.999999999999996; the relative slack of 1e-9 lets a
 * target the user typed as exact admit the allocation that meets it exactly.
 */
export function rankSumCapacity(fraction: number, layers: number, headDim: number): number {
  const exact = fraction * layers * 2 * headDim;
  return Math.floor(exact + exact * 1e-9);
}
