import ort from 'onnxruntime-node';
import { RankwiseError } from '../core/errors.ts';
import type { FactorPair, LayerCompression } from '../core/kv.ts';
import type { ModelSpec } from '../model/types.ts';
import { f32 } from './engine.ts';
import { LAYER_INPUTS, type LayerVariant } from './graphs/decoder-layer.ts';
import type { Feeds } from './runner.ts';
import { checkRopePlanes, thinRopeTables, thinSwap } from './thin-rope.ts';

/** M = A·Bᵀ (d×d, float64) of a rank-r pair: the projection k → k·M that the layer graphs apply. */
export function pairProduct(a: Float64Array, b: Float64Array, d: number, r: number): Float64Array {
  const m = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += a[i * r + k] * b[j * r + k];
      m[i * d + j] = s;
    }
  }
  return m;
}

/** Per-head d×d matrices M_g = A_g·B_gᵀ stacked as [H_kv, d, d] float32: the graph's projection input. */
export function projectionTensor(pairs: FactorPair[], d: number): Float32Array {
  const out = new Float32Array(pairs.length * d * d);
  pairs.forEach(({ a, b, rank }, g) => out.set(pairProduct(a, b, d, rank), g * d * d));
  return out;
}

/** The graph variant and extra feeds that apply a layer's compression (none for an uncompressed layer). */
export function compressionInputs(
  spec: ModelSpec,
  c: LayerCompression | null,
  T: number,
): { variant: LayerVariant; feeds: Feeds } {
  const variant: LayerVariant = {};
  const feeds: Feeds = {};
  if (!c) return { variant, feeds };
  const dims = [spec.numKvHeads, spec.headDim, spec.headDim];
  if (c.keys && c.keySpace === 'thin-rope') {
    variant.keyProjection = 'thin';
    Object.assign(feeds, thinFeeds(spec, c, T, 'float32'));
  } else if (c.keys) {
    variant.keyProjection = c.keySpace === 'post-rope' ? 'post' : 'pre';
    feeds[LAYER_INPUTS.kProj] = f32(projectionTensor(c.keys, spec.headDim), dims);
  }
  if (c.values) {
    variant.valueProjection = true;
    feeds[LAYER_INPUTS.vProj] = f32(projectionTensor(c.values, spec.headDim), dims);
  }
  return { variant, feeds };
}

/**
 * The `thin` inputs of a thin-rope compression for windows of T positions: the factors stacked
 * [H_kv, d, r], the thin RoPE tables [T, 1, r] and the swap, in float32 or float64.
 */
export function thinFeeds(
  spec: ModelSpec,
  c: LayerCompression,
  T: number,
  dtype: 'float32' | 'float64',
): Feeds {
  const Type = dtype === 'float64' ? Float64Array : Float32Array;
  const rope = spec.block.rope;
  if (!c.keys || !rope) throw new RankwiseError('internal', 'thin-rope keys need compressed keys and RoPE');
  const { numKvHeads: Hkv, headDim: d } = spec;
  const r = c.keys[0].rank;
  const planes = checkRopePlanes(c.ropePlanes, r, d);
  const tensor = (data: Float32Array | Float64Array, shape: number[]) => new ort.Tensor(dtype, data, shape);
  const stack = (pick: 'a' | 'b') => {
    const out = new Type(Hkv * d * r);
    c.keys!.forEach((p, g) => out.set(p[pick], g * d * r));
    return tensor(out, [Hkv, d, r]);
  };
  const t = thinRopeTables<Float32Array | Float64Array>(Type, rope, planes, r, T);
  const I = LAYER_INPUTS;
  return {
    [I.thinA]: stack('a'),
    [I.thinB]: stack('b'),
    [I.thinCos]: tensor(t.cos, [T, 1, r]),
    [I.thinSin]: tensor(t.sin, [T, 1, r]),
    [I.thinSwap]: new ort.Tensor('int64', BigInt64Array.from(thinSwap(r), BigInt), [r]),
  };
}
