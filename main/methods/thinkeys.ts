import { eigh, matmul } from './kernels.ts';
import { rowBlock, transpose } from './linalg.ts';
import { closedFormHooks } from './hooks.ts';
import { orthonormalFit } from './orthonormal-fit.ts';
import { valueBases } from './ksvd.ts';
import type { CompressionMethod, LayerCapture, LayerFit } from './types.ts';
import type { KeySpace } from '../core/kv.ts';
import { methodCard, methodKeySpaces } from '../core/methods.ts';
import type { ModelSpec } from '../model/types.ts';

export function fitThinKeys(capture: LayerCapture, spec: ModelSpec, keySpace: KeySpace): LayerFit {
  const d = spec.headDim;
  const D = spec.hiddenSize;
  // k_proj.weight rows g·d…(g+1)·d are W_K,gᵀ (d×D); its Gram W_K,gᵀW_K,g has the right singular vectors.
  const keyBases = capture.grams.kPre.map((_, g) => {
    const block = rowBlock(capture.weights.k.weight, D, g * d, d);
    return eigh(matmul(block, d, D, transpose(block, d, D), d), d).vectors;
  });
  const values = valueBases(capture.grams.v, d);
  const withValues = orthonormalFit(keySpace, d, keyBases, values);
  const keysOnly = orthonormalFit(keySpace, d, keyBases, null);
  return valuesBelowFull(d, withValues, keysOnly);
}

/**
 * Values stay untouched at full rank; below it they fall back to per-head PCA. Built outside
 * fitThinKeys, whose scope holds the layer's weights: a closure made there would keep them alive.
 */
function valuesBelowFull(d: number, withValues: LayerFit, keysOnly: LayerFit): LayerFit {
  const keySpace = withValues.keySpace;
  return { keySpace, at: (kRank, vRank) => (vRank < d ? withValues : keysOnly).at(kRank, vRank) };
}

/**
 * Thin keys (methods.md §7): per KV head, the truncated SVD of the key weights W_K,g = U Σ Vᵀ; the cache
 * holds x·U_rΣ_r and V_r is absorbed into the queries. Data-free: it never looks at activations. Under RoPE
 * the exact variant is R1 (rebuild with V_r, then rotate), i.e. the orthonormal projection V_r V_rᵀ.
 * Values stay untouched unless a value rank below d is asked for; then they use per-head PCA.
 */
export const thinkeys: CompressionMethod = {
  id: 'thinkeys',
  summary: methodCard('thinkeys').summary,
  keySpaces: (spec) => methodKeySpaces('thinkeys', spec.block.rope !== null, spec.block.qkNorm),
  fit: fitThinKeys,
  ...closedFormHooks(fitThinKeys),
};
