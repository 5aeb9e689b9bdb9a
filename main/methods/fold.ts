/**
 * Folding a layer's compression into its weights (methods.md §2.1): values always fold exactly, and
 * keys fold exactly on models without RoPE. The folded layer runs attention in the narrow space, so the
 * cache holds r numbers per head. The export writes these weights; tests check them against the
 * projection graphs.
 */
import { RankwiseError } from '../api/errors.ts';
import type { LayerWeights, Linear, ModelSpec } from '../model/types.ts';
import type { FactorPair, LayerCompression } from './types.ts';

/** New rows of a per-head block: for each head j, (P_jᵀ · rows of head j) — r×in from d×in. */
function projectRows(
  l: Linear,
  heads: number,
  d: number,
  pairFor: (head: number) => Float64Array,
  r: number,
): Linear {
  const weight = new Float32Array(heads * r * l.in);
  const bias = l.bias ? new Float32Array(heads * r) : undefined;
  for (let h = 0; h < heads; h++) {
    const p = pairFor(h); // d×r
    for (let k = 0; k < r; k++) {
      const out = weight.subarray((h * r + k) * l.in, (h * r + k + 1) * l.in);
      let b = 0;
      for (let i = 0; i < d; i++) {
        const c = p[i * r + k];
        if (c === 0) continue;
        const row = l.weight.subarray((h * d + i) * l.in, (h * d + i + 1) * l.in);
        for (let n = 0; n < l.in; n++) out[n] += c * row[n];
        if (l.bias) b += c * l.bias[h * d + i];
      }
      if (bias) bias[h * r + k] = b;
    }
  }
  return { weight, bias, out: heads * r, in: l.in };
}

/** o_proj [D, H·d] → [D, H·r]: head h's column block times B_g(h) (d×r). */
function projectOutputColumns(o: Linear, spec: ModelSpec, pairs: FactorPair[]): Linear {
  const { numHeads: H, numKvHeads: Hkv, headDim: d } = spec;
  const r = pairs[0].rank;
  const G = H / Hkv;
  const D = o.out;
  const weight = new Float32Array(D * H * r);
  for (let n = 0; n < D; n++) {
    for (let h = 0; h < H; h++) {
      const b = pairs[Math.floor(h / G)].b;
      for (let k = 0; k < r; k++) {
        let s = 0;
        for (let i = 0; i < d; i++) s += o.weight[n * H * d + h * d + i] * b[i * r + k];
        weight[n * H * r + h * r + k] = s;
      }
    }
  }
  return { weight, bias: o.bias, out: D, in: H * r };
}

/**
 * The layer with values folded (W_V,g' = W_V,g·A_v, W_O,h' = B_vᵀ·W_O,h) and, in the `folded` key space,
 * keys folded too (W_K,g' = W_K,g·A, W_Q,h' = W_Q,h·B). Attention keeps its original 1/√d scale.
 */
export function foldLayer(spec: ModelSpec, w: LayerWeights, c: LayerCompression): LayerWeights {
  const { numHeads: H, numKvHeads: Hkv, headDim: d } = spec;
  const G = H / Hkv;
  const out: LayerWeights = { ...w };
  if (c.values) {
    const pairs = c.values;
    out.v = projectRows(w.v, Hkv, d, (g) => pairs[g].a, pairs[0].rank);
    out.o = projectOutputColumns(w.o, spec, pairs);
  }
  if (c.keys) {
    if (c.keySpace !== 'folded') {
      throw new RankwiseError(
        'internal',
        `keys in the ${c.keySpace} key space cannot be folded into W_K and W_Q`,
      );
    }
    const pairs = c.keys;
    out.k = projectRows(w.k, Hkv, d, (g) => pairs[g].a, pairs[0].rank);
    out.q = projectRows(w.q, H, d, (h) => pairs[Math.floor(h / G)].b, pairs[0].rank);
  }
  return out;
}
