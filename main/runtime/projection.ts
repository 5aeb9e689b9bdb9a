import type { FactorPair, LayerCompression } from '../core/kv.ts';
import type { ModelSpec } from '../model/types.ts';
import { f32 } from './engine.ts';
import { LAYER_INPUTS, type LayerVariant } from './graphs/decoder-layer.ts';
import type { Feeds } from './runner.ts';

/** Per-head d×d matrices M_g = A_g·B_gᵀ stacked as [H_kv, d, d] float32: the graph's projection input. */
export function projectionTensor(pairs: FactorPair[], d: number): Float32Array {
  const out = new Float32Array(pairs.length * d * d);
  pairs.forEach(({ a, b, rank }, g) => {
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let k = 0; k < rank; k++) s += a[i * rank + k] * b[j * rank + k];
        out[g * d * d + i * d + j] = s;
      }
    }
  });
  return out;
}

/** The graph variant and extra feeds that apply a layer's compression (none for an uncompressed layer). */
export function compressionInputs(
  spec: ModelSpec,
  c: LayerCompression | null,
): { variant: LayerVariant; feeds: Feeds } {
  const variant: LayerVariant = {};
  const feeds: Feeds = {};
  if (!c) return { variant, feeds };
  const dims = [spec.numKvHeads, spec.headDim, spec.headDim];
  if (c.keys) {
    variant.keyProjection = c.keySpace === 'post-rope' ? 'post' : 'pre';
    feeds[LAYER_INPUTS.kProj] = f32(projectionTensor(c.keys, spec.headDim), dims);
  }
  if (c.values) {
    variant.valueProjection = true;
    feeds[LAYER_INPUTS.vProj] = f32(projectionTensor(c.values, spec.headDim), dims);
  }
  return { variant, feeds };
}
