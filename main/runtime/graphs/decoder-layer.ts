import type { ModelSpec } from '../../model/types.ts';
import { attr, GraphBuilder } from '../onnx/builder.ts';
import { DataType } from '../onnx/proto.ts';
import {
  attend,
  attentionResidual,
  blockKey,
  blockOf,
  type BlockNames,
  type FloatType,
  type LinearNames,
  mlpResidual,
  norm,
  type NormNames,
  projectHeads,
  scaleQueries,
  thinHeads,
  thinRotate,
} from './block.ts';
import { batchAndTime, linear, rope, shapeWith } from './common.ts';

/**
 * The names of a decoder layer graph's inputs. Weights are inputs rather than initializers, so one
 * session serves every layer of a model (all layers share a shape).
 */
export const LAYER_INPUTS = {
  x: 'x',
  cos: 'rope_cos',
  sin: 'rope_sin',
  /** [T, T] additive: causal, or the layer's sliding window. */
  mask: 'mask',
  attnNormW: 'attn_norm_w',
  attnNormB: 'attn_norm_b',
  wq: 'wq',
  bq: 'bq',
  wk: 'wk',
  bk: 'bk',
  wv: 'wv',
  bv: 'bv',
  wo: 'wo',
  bo: 'bo',
  /** [d]: per-head query and key norms (recipe.qkNorm). */
  qNormW: 'q_norm_w',
  kNormW: 'k_norm_w',
  /** The attention output's norm before its residual add (recipe.postNorms). */
  postAttnNormW: 'post_attn_norm_w',
  postAttnNormB: 'post_attn_norm_b',
  mlpNormW: 'mlp_norm_w',
  mlpNormB: 'mlp_norm_b',
  wGate: 'w_gate',
  bGate: 'b_gate',
  wUp: 'w_up',
  bUp: 'b_up',
  wDown: 'w_down',
  bDown: 'b_down',
  /** The MLP output's norm before its residual add (recipe.postNorms). */
  postMlpNormW: 'post_mlp_norm_w',
  postMlpNormB: 'post_mlp_norm_b',
  /** [H_kv, d, d]: keys k → k·M_g per KV head (M_g = A_g B_gᵀ; P Pᵀ for an orthonormal basis). */
  kProj: 'k_proj_m',
  /** [H_kv, d, d]: values v → v·M_g per KV head. */
  vProj: 'v_proj_m',
  /** [B, T, D]: the reference output an `error` variant compares against. */
  yRef: 'y_ref',
  /** `thin` keys (R3): [H_kv, d, r] key factor A and query factor B of each KV head. */
  thinA: 'thin_a',
  thinB: 'thin_b',
  /** `thin` keys: the thin space's RoPE tables [T, 1, r] and rotate_half's swap [r] (runtime/thin-rope.ts). */
  thinCos: 'thin_cos',
  thinSin: 'thin_sin',
  thinSwap: 'thin_swap',
} as const;

/** Per-KV-head Gram matrices a `capture` variant outputs, each [H_kv, d, d] summed over B·T tokens. */
export const CAPTURE_OUTPUTS = {
  kPre: 'gram_k_pre',
  kPost: 'gram_k_post',
  /** Σ over the G query heads of a group of QᵀQ: the stacked group queries of KQ-SVD. */
  qPre: 'gram_q_pre',
  qPost: 'gram_q_post',
  v: 'gram_v',
} as const;

/**
 * Graph variants of one decoder layer. Projections are d×d matrices per KV head fed as inputs, so every
 * candidate rank of every method runs through one session; `pre` applies them to keys before RoPE (R1),
 * `post` after it (R2). On a model without RoPE both are the folded key space. `thin` attends in the
 * thin space (R3): queries times B and keys times A, rotated by thin RoPE tables, all fed (any rank).
 */
export interface LayerVariant {
  keyProjection?: 'pre' | 'post' | 'thin';
  valueProjection?: boolean;
  /** Output the Gram matrices of CAPTURE_OUTPUTS beside y. */
  capture?: boolean;
  /** Output `sq_err` = ‖y − y_ref‖² and `sq_ref` = ‖y_ref‖² instead of y. */
  error?: boolean;
}

/** Identifies the graph for a spec: specs with equal keys can share one session. */
export function decoderLayerKey(spec: ModelSpec, variant: LayerVariant = {}): string {
  const s = spec;
  return [
    variant.keyProjection ?? '-',
    variant.valueProjection ? 'v' : '-',
    variant.capture ? 'capture' : '-',
    variant.error ? 'error' : '-',
    'layer',
    layerShapeKey(s),
  ].join(':');
}

/** The part of a layer graph's session key the model's shape and block recipe make. */
export function layerShapeKey(s: ModelSpec): string {
  return [s.hiddenSize, s.numHeads, s.numKvHeads, s.headDim, s.intermediateSize, blockKey(s.block)].join(':');
}

/** The graph inputs every layer graph shares: hidden rows, mask, RoPE tables and the block's weights. */
export interface LayerGraphInputs {
  x: string;
  mask: string;
  /** '' without RoPE. */
  cos: string;
  sin: string;
  weights: BlockNames;
}

/**
 * Declares x [B, T, D], the mask [T, T], the RoPE tables [T, 1, d] and every weight input the recipe
 * needs (LAYER_INPUTS names), all of element type `elem`.
 */
export function declareLayerInputs(
  g: GraphBuilder,
  spec: ModelSpec,
  elem: FloatType = DataType.FLOAT,
): LayerGraphInputs {
  const I = LAYER_INPUTS;
  const r = spec.block;
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: F } = spec;
  const input = (name: string, dims: (number | string)[]) => g.input(name, dims, elem);
  const layerNormed = r.norm.kind === 'layer';
  const normIn = (w: string, b: string): NormNames => ({
    w: input(w, [D]),
    b: layerNormed ? input(b, [D]) : undefined,
  });
  const linIn = (w: string, b: string, out: number, inp: number, bias: boolean): LinearNames => ({
    w: input(w, [out, inp]),
    b: bias ? input(b, [out]) : undefined,
  });
  const x = input(I.x, ['B', 'T', D]);
  const mask = input(I.mask, ['T', 'T']);
  const cos = r.rope ? input(I.cos, ['T', 1, d]) : '';
  const sin = r.rope ? input(I.sin, ['T', 1, d]) : '';
  const weights: BlockNames = {
    attnNorm: normIn(I.attnNormW, I.attnNormB),
    q: linIn(I.wq, I.bq, H * d, D, r.bias.qkv),
    k: linIn(I.wk, I.bk, Hkv * d, D, r.bias.qkv),
    v: linIn(I.wv, I.bv, Hkv * d, D, r.bias.qkv),
    o: linIn(I.wo, I.bo, D, H * d, r.bias.o),
    qNorm: r.qkNorm ? input(I.qNormW, [d]) : undefined,
    kNorm: r.qkNorm ? input(I.kNormW, [d]) : undefined,
    postAttnNorm: r.postNorms ? normIn(I.postAttnNormW, I.postAttnNormB) : undefined,
    mlpNorm: normIn(I.mlpNormW, I.mlpNormB),
    gate: r.mlp.gated ? linIn(I.wGate, I.bGate, F, D, r.bias.mlp) : undefined,
    up: linIn(I.wUp, I.bUp, F, D, r.bias.mlp),
    down: linIn(I.wDown, I.bDown, D, F, r.bias.mlp),
    postMlpNorm: r.postNorms ? normIn(I.postMlpNormW, I.postMlpNormB) : undefined,
  };
  return { x, mask, cos, sin, weights };
}

/** The sizes every layer graph builds with: hidden D, H query heads over H_kv KV heads of d, G per group. */
export function layerDims(spec: ModelSpec) {
  const H = spec.numHeads;
  const Hkv = spec.numKvHeads;
  return {
    D: spec.hiddenSize,
    H,
    Hkv,
    d: spec.headDim,
    G: H / Hkv,
    hasRope: spec.block.rope !== null,
  };
}

/**
 * One decoder layer, x [B, T, D] → y [B, T, D], attention over T under the fed mask (causal, or a
 * sliding window), computed as `spec.block` describes (block.ts): y = h + post(MLP(norm(h))),
 * h = x + post(Attn(norm(x))), grouped KV heads, RoPE when the recipe has it.
 */
export function buildDecoderLayer(spec: ModelSpec, variant: LayerVariant = {}): Uint8Array {
  const I = LAYER_INPUTS;
  const { D, H, Hkv, d, G, hasRope } = layerDims(spec);
  const g = new GraphBuilder('decoder_layer');
  const b = blockOf(g, spec.block);
  const { x, mask, cos, sin, weights: w } = declareLayerInputs(g, spec);

  const bt = batchAndTime(g, x);
  const x2 = g.op('Reshape', [x, g.constInt64([-1, D])]);
  const h1 = norm(b, x2, w.attnNorm).out;

  const kProj =
    variant.keyProjection && variant.keyProjection !== 'thin' ? g.input(I.kProj, [Hkv, d, d]) : '';
  const vProj = variant.valueProjection ? g.input(I.vProj, [Hkv, d, d]) : '';
  const qPre = projectHeads(b, h1, w.q, shapeWith(g, bt, [H, d]), w.qNorm);
  const kPre = projectHeads(b, h1, w.k, shapeWith(g, bt, [Hkv, d]), w.kNorm);
  let v = linear(g, h1, w.v.w, w.v.b);
  let q = qPre;
  let k = variant.keyProjection === 'pre' ? perHeadProject(g, kPre, kProj, Hkv, d) : kPre;
  const thin = variant.keyProjection === 'thin';
  if (thin) {
    const t = declareThinInputs(g, Hkv, d);
    const rotate = (x: string) => thinRotate(b, x, t.cos, t.sin, t.swap).out;
    q = rotate(thinHeads(b, qPre, t.b, { kvHeads: Hkv, group: G, d }, shapeWith(g, bt, [H, -1])));
    k = rotate(thinHeads(b, kPre, t.a, { kvHeads: Hkv, group: 1, d }, shapeWith(g, bt, [Hkv, -1])));
  } else if (hasRope) {
    q = rope(g, q, cos, sin, d);
    k = rope(g, k, cos, sin, d);
  }
  if (variant.keyProjection === 'post') k = perHeadProject(g, k, kProj, Hkv, d);
  if (variant.valueProjection) v = perHeadProject(g, v, vProj, Hkv, d);
  if (variant.capture) {
    const C = CAPTURE_OUTPUTS;
    const kPost = hasRope ? rope(g, kPre, cos, sin, d) : kPre;
    g.output(C.kPre, headGram(g, kPre, Hkv, 1, d), [Hkv, d, d]);
    g.output(C.kPost, headGram(g, kPost, Hkv, 1, d), [Hkv, d, d]);
    g.output(C.qPre, headGram(g, qPre, Hkv, G, d), [Hkv, d, d]);
    g.output(C.qPost, headGram(g, q, Hkv, G, d), [Hkv, d, d]);
    g.output(C.v, headGram(g, v, Hkv, 1, d), [Hkv, d, d]);
  }

  // Grouped-query attention without repeating K and V: queries [B, Hkv, G, T, d] against keys
  // [B, Hkv, 1, d, T] broadcast over the group axis; query head h = g·G + j uses KV head g.
  // thin queries and keys are r wide, which the graph is fed rather than built with
  const qk = thin ? -1 : d;
  const q5 = g.op('Transpose', [g.op('Reshape', [scaleQueries(b, q), shapeWith(g, bt, [Hkv, G, qk])])], {
    perm: attr.ints([0, 2, 3, 1, 4]),
  });
  const kT = g.op('Transpose', [g.op('Reshape', [k, shapeWith(g, bt, [Hkv, 1, qk])])], {
    perm: attr.ints([0, 2, 3, 4, 1]),
  });
  const v5 = g.op('Transpose', [g.op('Reshape', [v, shapeWith(g, bt, [Hkv, 1, d])])], {
    perm: attr.ints([0, 2, 3, 1, 4]),
  });
  const { ctx } = attend(b, q5, kT, v5, mask);
  const merged = g.op('Reshape', [
    g.op('Transpose', [ctx], { perm: attr.ints([0, 3, 1, 2, 4]) }),
    g.constInt64([-1, H * d]),
  ]);
  const h = attentionResidual(b, x2, merged, w.o, w.postAttnNorm).out;
  const y = g.op('Reshape', [mlpResidual(b, h, w).out, g.op('Shape', [x])]);
  if (variant.error) {
    // Reduced in the graph so a rank sweep never copies [B, T, D] outputs back to JavaScript.
    const yRef = g.input(I.yRef, ['B', 'T', D]);
    const all = { keepdims: attr.i(0) };
    g.output('sq_err', g.op('ReduceSumSquare', [g.op('Sub', [y, yRef])], all), []);
    g.output('sq_ref', g.op('ReduceSumSquare', [yRef], all), []);
  } else {
    g.output('y', y, ['B', 'T', D]);
  }
  return g.build();
}

/** The inputs of thin-space keys (LAYER_INPUTS.thin*), any rank r. */
export function declareThinInputs(g: GraphBuilder, Hkv: number, d: number, elem: FloatType = DataType.FLOAT) {
  const I = LAYER_INPUTS;
  return {
    a: g.input(I.thinA, [Hkv, d, 'r'], elem),
    b: g.input(I.thinB, [Hkv, d, 'r'], elem),
    cos: g.input(I.thinCos, ['T', 1, 'r'], elem),
    sin: g.input(I.thinSin, ['T', 1, 'r'], elem),
    swap: g.input(I.thinSwap, ['r'], DataType.INT64),
  };
}

/** x [.., heads·d] or [.., heads, d] (any leading dims) → x_h·M_h per head, same shape as given. */
function perHeadProject(g: GraphBuilder, x: string, m: string, heads: number, d: number): string {
  const rows = g.op('Reshape', [x, g.constInt64([-1, heads, 1, d])]);
  // [N, heads, 1, d] · [heads, d, d] broadcasts to [N, heads, 1, d]: one d×d product per head and row.
  const projected = g.op('MatMul', [rows, m]);
  return g.op('Reshape', [projected, g.op('Shape', [x])]);
}

/**
 * Σ over tokens (and over `group` heads sharing a KV head) of xᵀx per KV head: x [.., kvHeads·group, d]
 * → [kvHeads, d, d]. Query head h belongs to KV head ⌊h / group⌋, matching the attention above.
 */
function headGram(g: GraphBuilder, x: string, kvHeads: number, group: number, d: number): string {
  const rows = g.op('Reshape', [x, g.constInt64([-1, kvHeads, group, d])]);
  const stacked = g.op('Reshape', [
    g.op('Transpose', [rows], { perm: attr.ints([1, 0, 2, 3]) }),
    g.constInt64([kvHeads, -1, d]),
  ]);
  const transposed = g.op('Transpose', [stacked], { perm: attr.ints([0, 2, 1]) });
  return g.op('MatMul', [transposed, stacked]);
}
