import { eigh, matmul } from './kernels.ts';
import { rowBlock, transpose } from './linalg.ts';
import { closedFormHooks } from './hooks.ts';
import { orthonormalFit } from './orthonormal-fit.ts';
import { valueBases } from './ksvd.ts';
import type { CompressionMethod, LayerCapture, LayerFit } from './types.ts';
import type { KeySpace } from '../core/kv.ts';
import { methodCard, methodKeySpaces } from '../core/methods.ts';
import type { ModelSpec } from '../model/types.ts';
import { planeSelection, thinPlaneCount } from '../runtime/thin-rope.ts';

export function fitThinKeys(capture: LayerCapture, spec: ModelSpec, keySpace: KeySpace): LayerFit {
  if (keySpace === 'thin-rope') return fitThinSpace(capture, spec);
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
 * The start of thin keys with attention in the thin space (R3, runtime/thin-rope.ts). A basis that is not
 * made of whole RoPE planes rotates differently in the thin space, so the SVD of W_K would start far from
 * the model; the planes themselves are an exact start. They are ranked by the logit energy they carry,
 * Σ_g ‖k_g,p‖²·‖q_g,p‖² over the calibration tokens (rotation keeps each plane's norm, so pre-RoPE Grams
 * measure it), and rank r keeps the ⌊r/2⌋ first. An odd rank's extra dimension reads the stronger key
 * coordinate of the next plane with a zero query column: exact at the start (it adds nothing to any
 * score) and free for fine-tuning to use.
 */
function fitThinSpace(capture: LayerCapture, spec: ModelSpec): LayerFit {
  const d = spec.headDim;
  const half = d / 2;
  const { kPre, qPre } = capture.grams;
  const diag = (gram: Float64Array, i: number) => gram[i * d + i];
  const energy = Array.from({ length: half }, (_, p) =>
    kPre.reduce(
      (acc, k, g) => acc + (diag(k, p) + diag(k, p + half)) * (diag(qPre[g], p) + diag(qPre[g], p + half)),
      0,
    ),
  );
  const order = energy.map((_, p) => p).sort((x, y) => energy[y] - energy[x] || x - y);
  const keyEnergy = (i: number) => kPre.reduce((acc, k) => acc + diag(k, i), 0);
  const values = valueBases(capture.grams.v, d);
  const withValues = orthonormalFit('thin-rope', d, values, values);
  return {
    keySpace: 'thin-rope',
    at: (kRank, vRank) => {
      const planes = order.slice(0, thinPlaneCount(kRank));
      const next = order[planes.length];
      const extra = next === undefined ? -1 : keyEnergy(next) >= keyEnergy(next + half) ? next : next + half;
      const a = planeSelection(d, kRank, planes, kRank % 2 === 1 ? extra : -1);
      const b = planeSelection(d, kRank, planes);
      return {
        keySpace: 'thin-rope',
        kRank,
        vRank,
        keys: kRank < d ? capture.grams.kPre.map(() => ({ a, b, rank: kRank })) : null,
        values: vRank < d ? withValues.at(kRank, vRank).values : null,
        ...(kRank < d ? { ropePlanes: planes } : {}),
      };
    },
  };
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
