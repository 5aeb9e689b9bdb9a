import type { ModelSpec } from '../../model/types.ts';
import { attr, GraphBuilder } from '../onnx/builder.ts';
import { batchAndTime, layerNorm, linear, rmsNorm, rope, shapeWith } from './common.ts';

/**
 * The names of a decoder layer graph's inputs. Weights are inputs rather than initializers, so one
 * session serves every layer of a model (all layers share a shape).
 */
export const LAYER_INPUTS = {
  x: 'x',
  cos: 'rope_cos',
  sin: 'rope_sin',
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
  mlpNormW: 'mlp_norm_w',
  mlpNormB: 'mlp_norm_b',
  wGate: 'w_gate',
  wUp: 'w_up',
  bUp: 'b_up',
  wDown: 'w_down',
  bDown: 'b_down',
  /** [H_kv, d, d]: keys k → k·M_g per KV head (M_g = A_g B_gᵀ; P Pᵀ for an orthonormal basis). */
  kProj: 'k_proj_m',
  /** [H_kv, d, d]: values v → v·M_g per KV head. */
  vProj: 'v_proj_m',
  /** [B, T, D]: the reference output an `error` variant compares against. */
  yRef: 'y_ref',
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
 * `post` after it (R2). On a model without RoPE both are the folded key space.
 */
export interface LayerVariant {
  keyProjection?: 'pre' | 'post';
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
    s.family,
    s.hiddenSize,
    s.numHeads,
    s.numKvHeads,
    s.headDim,
    s.intermediateSize,
    s.norm.kind,
    s.norm.eps,
    s.act,
    s.qkvBias,
    s.oBias,
    s.mlpBias,
    s.rope ? 'rope' : 'norope',
  ].join(':');
}

/**
 * One decoder layer, x [B, T, D] → y [B, T, D], with causal attention over T.
 * Llama family: y = h + MLP(RMSNorm(h)), h = x + Attn(RMSNorm(x)), SwiGLU MLP, RoPE, grouped KV heads.
 * GPT-2: the same residual form with LayerNorm, learned positions (added at the embedding) and gelu_new.
 */
export function buildDecoderLayer(spec: ModelSpec, variant: LayerVariant = {}): Uint8Array {
  const I = LAYER_INPUTS;
  const D = spec.hiddenSize;
  const H = spec.numHeads;
  const Hkv = spec.numKvHeads;
  const d = spec.headDim;
  const G = H / Hkv;
  const F = spec.intermediateSize;
  const g = new GraphBuilder('decoder_layer');

  const x = g.input(I.x, ['B', 'T', D]);
  const mask = g.input(I.mask, ['T', 'T']);
  const cos = spec.rope ? g.input(I.cos, ['T', 1, d]) : '';
  const sin = spec.rope ? g.input(I.sin, ['T', 1, d]) : '';
  const attnNormW = g.input(I.attnNormW, [D]);
  const layerNormed = spec.norm.kind === 'layer';
  const attnNormB = layerNormed ? g.input(I.attnNormB, [D]) : '';
  const wq = g.input(I.wq, [H * d, D]);
  const wk = g.input(I.wk, [Hkv * d, D]);
  const wv = g.input(I.wv, [Hkv * d, D]);
  const bq = spec.qkvBias ? g.input(I.bq, [H * d]) : undefined;
  const bk = spec.qkvBias ? g.input(I.bk, [Hkv * d]) : undefined;
  const bv = spec.qkvBias ? g.input(I.bv, [Hkv * d]) : undefined;
  const wo = g.input(I.wo, [D, H * d]);
  const bo = spec.oBias ? g.input(I.bo, [D]) : undefined;
  const mlpNormW = g.input(I.mlpNormW, [D]);
  const mlpNormB = layerNormed ? g.input(I.mlpNormB, [D]) : '';
  const wGate = spec.act === 'silu' ? g.input(I.wGate, [F, D]) : '';
  const wUp = g.input(I.wUp, [F, D]);
  const bUp = spec.mlpBias ? g.input(I.bUp, [F]) : undefined;
  const wDown = g.input(I.wDown, [D, F]);
  const bDown = spec.mlpBias ? g.input(I.bDown, [D]) : undefined;

  const norm = (v: string, w: string, b: string) =>
    layerNormed ? layerNorm(g, v, w, b, spec.norm.eps) : rmsNorm(g, v, w, spec.norm.eps);

  const bt = batchAndTime(g, x);
  const x2 = g.op('Reshape', [x, g.constInt64([-1, D])]);
  const h1 = norm(x2, attnNormW, attnNormB);

  const kProj = variant.keyProjection ? g.input(I.kProj, [Hkv, d, d]) : '';
  const vProj = variant.valueProjection ? g.input(I.vProj, [Hkv, d, d]) : '';
  const qPre = g.op('Reshape', [linear(g, h1, wq, bq), shapeWith(g, bt, [H, d])]);
  const kPre = g.op('Reshape', [linear(g, h1, wk, bk), shapeWith(g, bt, [Hkv, d])]);
  let v = linear(g, h1, wv, bv);
  let q = qPre;
  let k = variant.keyProjection === 'pre' ? perHeadProject(g, kPre, kProj, Hkv, d) : kPre;
  if (spec.rope) {
    q = rope(g, q, cos, sin, d);
    k = rope(g, k, cos, sin, d);
  }
  if (variant.keyProjection === 'post') k = perHeadProject(g, k, kProj, Hkv, d);
  if (variant.valueProjection) v = perHeadProject(g, v, vProj, Hkv, d);
  if (variant.capture) {
    const C = CAPTURE_OUTPUTS;
    const kPost = spec.rope ? rope(g, kPre, cos, sin, d) : kPre;
    g.output(C.kPre, headGram(g, kPre, Hkv, 1, d), [Hkv, d, d]);
    g.output(C.kPost, headGram(g, kPost, Hkv, 1, d), [Hkv, d, d]);
    g.output(C.qPre, headGram(g, qPre, Hkv, G, d), [Hkv, d, d]);
    g.output(C.qPost, headGram(g, q, Hkv, G, d), [Hkv, d, d]);
    g.output(C.v, headGram(g, v, Hkv, 1, d), [Hkv, d, d]);
  }
  // Scaling q (T·d values per head) is cheaper than scaling the T×T scores.
  q = g.op('Mul', [q, g.constFloat([1 / Math.sqrt(d)], [])]);

  // Grouped-query attention without repeating K and V: queries [B, Hkv, G, T, d] against keys
  // [B, Hkv, 1, d, T] broadcast over the group axis; query head h = g·G + j uses KV head g.
  const q5 = g.op('Transpose', [g.op('Reshape', [q, shapeWith(g, bt, [Hkv, G, d])])], {
    perm: attr.ints([0, 2, 3, 1, 4]),
  });
  const kT = g.op('Transpose', [g.op('Reshape', [k, shapeWith(g, bt, [Hkv, 1, d])])], {
    perm: attr.ints([0, 2, 3, 4, 1]),
  });
  const v5 = g.op('Transpose', [g.op('Reshape', [v, shapeWith(g, bt, [Hkv, 1, d])])], {
    perm: attr.ints([0, 2, 3, 1, 4]),
  });
  const scores = g.op('Add', [g.op('MatMul', [q5, kT]), mask]);
  const probs = g.op('Softmax', [scores], { axis: attr.i(-1) });
  const ctx = g.op('Transpose', [g.op('MatMul', [probs, v5])], { perm: attr.ints([0, 3, 1, 2, 4]) });
  const attnOut = linear(g, g.op('Reshape', [ctx, g.constInt64([-1, H * d])]), wo, bo);
  const h = g.op('Add', [x2, attnOut]);

  const h2 = norm(h, mlpNormW, mlpNormB);
  let act: string;
  if (spec.act === 'silu') {
    const gate = linear(g, h2, wGate);
    act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), linear(g, h2, wUp)]);
  } else {
    act = g.op('Gelu', [linear(g, h2, wUp, bUp)], { approximate: attr.s('tanh') });
  }
  const y = g.op('Reshape', [g.op('Add', [h, linear(g, act, wDown, bDown)]), g.op('Shape', [x])]);
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
