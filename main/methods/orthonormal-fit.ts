import { orthonormalPair } from './linalg.ts';
import type { LayerFit } from './types.ts';
import type { FactorPair, KeySpace } from '../core/kv.ts';

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
  return sideFit(
    keySpace,
    (kRank) => keyBases.map((p) => orthonormalPair(p, d, kRank)),
    (vRank) => (valueBases ? valueBases.map((p) => orthonormalPair(p, d, vRank)) : null),
  );
}

/**
 * A layer fit whose keys depend on the key rank alone and values on the value rank alone, the shape of
 * every closed form and of StiefAttention's learned bases. Define the two callbacks where they capture no
 * more than their factors: a fit lives as long as the job.
 */
export function sideFit(
  keySpace: KeySpace,
  keysAt: (kRank: number) => FactorPair[] | null,
  valuesAt: (vRank: number) => FactorPair[] | null,
): LayerFit {
  return {
    keySpace,
    at: (kRank, vRank) => ({ keySpace, kRank, vRank, keys: keysAt(kRank), values: valuesAt(vRank) }),
  };
}
