/**
 * Folding a layer's compression into its weights (methods.md §2.1): values always fold exactly, and
 * keys fold exactly on models without RoPE. The folded layer runs attention in the narrow space, so the
 * cache holds r numbers per head. The export writes these weights; tests check them against the
 * projection graphs.
 */
import { RankwiseError } from '../core/errors.ts';
import { attentionShape, checkRopePlanes, type KvLayerLayout } from './kv-layout.ts';
import type { LayerWeights, Linear, ModelSpec } from './types.ts';
import type { FactorPair, KeySpace, LayerCompression } from '../core/kv.ts';

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
    if (c.keySpace !== 'folded' && c.keySpace !== 'thin-rope') {
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

/** A layer as a compressed checkpoint stores it: narrowed projections plus the key bases, float32. */
export interface NarrowLayer {
  /** q/k/v/o narrowed per attentionShape(); every other weight as in the original. */
  weights: LayerWeights;
  /** [H_kv, d, r_k]: B (pre-RoPE, rebuilds keys from the cached latent) or A (post-RoPE). */
  kBasis?: Float32Array;
  /** [H_kv, d, r_k]: B of the post-RoPE pair, applied to RoPE'd queries. */
  qBasis?: Float32Array;
  layout: KvLayerLayout;
}

/** Stacks per-head d×r float64 factors into one [H_kv, d, r] float32 tensor. */
function stackFactors(pairs: FactorPair[], pick: 'a' | 'b'): Float32Array {
  const size = pairs[0][pick].length;
  const out = new Float32Array(pairs.length * size);
  pairs.forEach((p, g) => out.set(p[pick], g * size));
  return out;
}

/**
 * The layer as the export writes it (ARCHITECTURE.md §7): values folded into v/o; keys folded (no RoPE),
 * narrowed to the cached latent W_K·A with B kept as `k_basis` (pre-RoPE), or left whole with A and B
 * kept as `k_basis` and `q_basis` (post-RoPE).
 */
export function narrowLayer(spec: ModelSpec, w: LayerWeights, given: LayerCompression | null): NarrowLayer {
  const c = effectiveCompression(spec, given);
  const layout = compressionLayout(spec, c);
  if (!c) return { weights: w, layout };
  if (c.keySpace === 'folded' || c.keySpace === 'thin-rope' || !c.keys) {
    return { weights: foldLayer(spec, w, c), layout };
  }
  const weights = foldLayer(spec, w, { ...c, keys: null });
  const pairs = c.keys;
  if (c.keySpace === 'pre-rope') {
    weights.k = projectRows(w.k, spec.numKvHeads, spec.headDim, (g) => pairs[g].a, pairs[0].rank);
  }
  return { weights, ...keyBases(spec, c), layout };
}

/**
 * A side kept at full rank is no compression at all (a rank-d projector is the identity), and the
 * checkpoint stores it as the original weights: drop such sides so every consumer agrees.
 */
export function effectiveCompression(spec: ModelSpec, c: LayerCompression | null): LayerCompression | null {
  if (!c) return null;
  const d = spec.headDim;
  const keys = c.keys && c.keys[0].rank < d ? c.keys : null;
  const values = c.values && c.values[0].rank < d ? c.values : null;
  if (!keys && !values) return null;
  return keys === c.keys && values === c.values ? c : { ...c, keys, values };
}

/** The cache layout a compression gives a layer (ranks of d for an uncompressed side). */
export function compressionLayout(spec: ModelSpec, given: LayerCompression | null): KvLayerLayout {
  const c = effectiveCompression(spec, given);
  const d = spec.headDim;
  if (!c) return { kRank: d, vRank: d, keySpace: given?.keySpace ?? defaultKeySpace(spec) };
  const layout = {
    kRank: c.keys ? c.keys[0].rank : d,
    vRank: c.values ? c.values[0].rank : d,
    keySpace: c.keySpace,
  };
  if (c.keySpace !== 'thin-rope' || !c.keys) return layout;
  return { ...layout, ropePlanes: checkRopePlanes(c.ropePlanes, layout.kRank, d) };
}

/** The stored key bases of a compression: B (pre-RoPE) or A and B (post-RoPE); none when folded. */
export function keyBases(
  spec: ModelSpec,
  given: LayerCompression | null,
): { kBasis?: Float32Array; qBasis?: Float32Array } {
  const c = effectiveCompression(spec, given);
  if (!c?.keys || c.keySpace === 'folded' || c.keySpace === 'thin-rope') return {};
  if (c.keySpace === 'pre-rope') return { kBasis: stackFactors(c.keys, 'b') };
  return { kBasis: stackFactors(c.keys, 'a'), qBasis: stackFactors(c.keys, 'b') };
}

/** The key space an uncompressed layer is labelled with: the model's natural one. */
export function defaultKeySpace(spec: ModelSpec): KeySpace {
  if (!spec.block.rope) return 'folded';
  // per-head q/k norms rule pre-RoPE keys out (keySpaceObstacle), so the label names the space they allow
  return spec.block.qkNorm ? 'post-rope' : 'pre-rope';
}

/** Pads each head's block of `rows` rows (of `l.in` columns) to d rows with zeros. */
function padRows(l: Linear, heads: number, rows: number, d: number): Linear {
  if (rows === d) return l;
  const weight = new Float32Array(heads * d * l.in);
  const bias = l.bias ? new Float32Array(heads * d) : undefined;
  for (let h = 0; h < heads; h++) {
    weight.set(l.weight.subarray(h * rows * l.in, (h + 1) * rows * l.in), h * d * l.in);
    if (bias) bias.set(l.bias!.subarray(h * rows, (h + 1) * rows), h * d);
  }
  return { weight, bias, out: heads * d, in: l.in };
}

/** Pads each head's block of `cols` input columns of o_proj to d columns with zeros. */
function padColumns(o: Linear, heads: number, cols: number, d: number): Linear {
  if (cols === d) return o;
  const weight = new Float32Array(o.out * heads * d);
  for (let n = 0; n < o.out; n++) {
    for (let h = 0; h < heads; h++) {
      weight.set(
        o.weight.subarray(n * heads * cols + h * cols, n * heads * cols + (h + 1) * cols),
        n * heads * d + h * d,
      );
    }
  }
  return { weight, bias: o.bias, out: o.out, in: heads * d };
}

/** Unstacks [H_kv, d, r] float32 into per-head d×r float64 factors. */
function unstack(t: Float32Array, heads: number, d: number, r: number): Float64Array[] {
  return Array.from({ length: heads }, (_, g) => Float64Array.from(t.subarray(g * d * r, (g + 1) * d * r)));
}

/**
 * A stored narrow layer in the runtime's full-width form: narrowed heads are zero-padded back to d (an
 * exact identity: the padded coordinates are zero in q, k and v alike) and the key bases become a
 * projection the layer graph applies. The reader uses this to run a Rankwise checkpoint through the
 * same graphs as any model; the ONNX decoder runs the narrow form itself.
 */
export function expandLayer(
  spec: ModelSpec,
  layer: NarrowLayer,
): { weights: LayerWeights; compression: LayerCompression | null } {
  const { numHeads: H, numKvHeads: Hkv, headDim: d } = spec;
  const shape = attentionShape(layer.layout, d);
  const w = layer.weights;
  const weights: LayerWeights = {
    ...w,
    q: padRows(w.q, H, shape.qWidth, d),
    k: padRows(w.k, Hkv, shape.kWidth, d),
    v: padRows(w.v, Hkv, shape.vWidth, d),
    o: padColumns(w.o, H, shape.vWidth, d),
  };
  return { weights, compression: keyProjection(spec, layer.layout, layer) };
}

/**
 * The run-time key projection of a stored layer, from its bases alone: null when keys are folded or
 * uncompressed (the padded weights already say everything).
 */
export function keyProjection(
  spec: ModelSpec,
  layout: KvLayerLayout,
  bases: { kBasis?: Float32Array; qBasis?: Float32Array },
): LayerCompression | null {
  const { numKvHeads: Hkv, headDim: d } = spec;
  if (layout.keySpace === 'thin-rope' && layout.kRank < d) return thinProjection(spec, layout);
  if (!attentionShape(layout, d).kBasis) return null;
  const r = layout.kRank;
  if (!bases.kBasis || (layout.keySpace === 'post-rope' && !bases.qBasis)) {
    throw new RankwiseError('internal', `layer with ${layout.keySpace} keys lacks its bases`);
  }
  const kb = unstack(bases.kBasis, Hkv, d, r);
  let keys: FactorPair[];
  if (layout.keySpace === 'pre-rope') {
    // the padded key is [latent, 0]; selecting its first r coordinates and applying Bᵀ rebuilds W_K·A·Bᵀ
    const select = new Float64Array(d * r);
    for (let k = 0; k < r; k++) select[k * r + k] = 1;
    keys = kb.map((b) => ({ a: select, b, rank: r }));
  } else {
    const qb = unstack(bases.qBasis!, Hkv, d, r);
    keys = kb.map((a, g) => ({ a, b: qb[g], rank: r }));
  }
  return { keySpace: layout.keySpace, kRank: r, vRank: layout.vRank, keys, values: null };
}

/**
 * Thin-space keys as stored: W_K·A and W_Q·B are the narrowed projections, zero-padded to d by
 * expandLayer, so the factors that read them back are the selection of their first r coordinates.
 */
function thinProjection(spec: ModelSpec, layout: KvLayerLayout): LayerCompression {
  const { numKvHeads: Hkv, headDim: d } = spec;
  const r = layout.kRank;
  const select = new Float64Array(d * r);
  for (let k = 0; k < r; k++) select[k * r + k] = 1;
  return {
    keySpace: 'thin-rope',
    kRank: r,
    vRank: layout.vRank,
    keys: Array.from({ length: Hkv }, () => ({ a: select, b: select, rank: r })),
    values: null,
    ropePlanes: checkRopePlanes(layout.ropePlanes, r, d),
  };
}
