import { eigh } from './kernels.ts';
import { closedFormHooks } from './hooks.ts';
import { orthonormalFit } from './orthonormal-fit.ts';
import type { CompressionMethod, LayerCapture, LayerFit } from './types.ts';
import type { KeySpace } from '../core/kv.ts';
import { methodCard, methodKeySpaces } from '../core/methods.ts';
import type { ModelSpec } from '../model/types.ts';

export function fitKsvd(capture: LayerCapture, spec: ModelSpec, keySpace: KeySpace): LayerFit {
  const d = spec.headDim;
  const keyGrams = keySpace === 'post-rope' ? capture.grams.kPost : capture.grams.kPre;
  const keyBases = keyGrams.map((c) => eigh(c, d).vectors);
  const valueBases = capture.grams.v.map((c) => eigh(c, d).vectors);
  return orthonormalFit(keySpace, d, keyBases, valueBases);
}

/**
 * Plain per-head K/V SVD (methods.md §3): each KV head keeps the top-r principal directions of its own
 * keys and values (uncentered PCA, the eigenvectors of the d×d Gram matrix). Keys pre-RoPE are rebuilt
 * and then rotated (R1); post-RoPE keys are projected with queries (R2).
 */
export const ksvd: CompressionMethod = {
  id: 'ksvd',
  summary: methodCard('ksvd').summary,
  keySpaces: (spec) => methodKeySpaces('ksvd', spec.block.rope !== null, spec.block.qkNorm),
  fit: fitKsvd,
  ...closedFormHooks(fitKsvd),
};

/** The per-head value bases every method can fall back on (thin keys with --v-rank < d). */
export function valueBases(grams: Float64Array[], d: number): Float64Array[] {
  return grams.map((c) => eigh(c, d).vectors);
}
