import { orthonormalPair } from './linalg.ts';
import type { LayerFit } from './types.ts';
import type { KeySpace } from '../core/kv.ts';

/**
 * A layer fit from full orthonormal bases (d×d, columns ordered by importance), one per KV head for keys
 * and for values: rank r keeps the leading r columns. The shape shared by K/V PCA, EigenAttention (the
 * same key basis for every head) and thin keys. `values: null` leaves values at full dimension whatever
 * the rank asked.
 */
export function orthonormalFit(
  keySpace: KeySpace,
  d: number,
  keyBases: Float64Array[],
  valueBases: Float64Array[] | null,
): LayerFit {
  return {
    keySpace,
    at: (kRank, vRank) => ({
      keySpace,
      kRank,
      vRank,
      keys: keyBases.map((p) => orthonormalPair(p, d, kRank)),
      values: valueBases ? valueBases.map((p) => orthonormalPair(p, d, vRank)) : null,
    }),
  };
}
