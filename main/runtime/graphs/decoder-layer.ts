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
} as const;

/** Identifies the graph for a spec: specs with equal keys can share one session. */
export function decoderLayerKey(spec: ModelSpec): string {
  const s = spec;
  return [
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
export function buildDecoderLayer(spec: ModelSpec): Uint8Array {
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

  let q = g.op('Reshape', [linear(g, h1, wq, bq), shapeWith(g, bt, [H, d])]);
  let k = g.op('Reshape', [linear(g, h1, wk, bk), shapeWith(g, bt, [Hkv, d])]);
  const v = linear(g, h1, wv, bv);
  if (spec.rope) {
    q = rope(g, q, cos, sin, d);
    k = rope(g, k, cos, sin, d);
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
  const y = g.op('Add', [h, linear(g, act, wDown, bDown)]);
  g.output('y', g.op('Reshape', [y, g.op('Shape', [x])]), ['B', 'T', D]);
  return g.build();
}
