import type { ModelSpec } from '../../model/types.ts';
import { attr, GraphBuilder } from '../onnx/builder.ts';
import { DataType } from '../onnx/proto.ts';
import { batchAndTime, linear, shapeWith } from './common.ts';
import { decoderLayerKey, LAYER_INPUTS } from './decoder-layer.ts';

/**
 * The gradient of StiefAttention's layer loss (methods.md §8.2)
 *
 *   ℒ = ‖Ŷ − Y‖²_F / ‖Y‖²_F
 *
 * with respect to the per-KV-head key and value projections M_K,g and M_V,g (the `keyProjection: 'pre'`
 * + `valueProjection` decoder layer: k → k·M_K,g before RoPE, v → v·M_V,g). The backward pass is derived
 * by hand and written as plain ONNX ops (ARCHITECTURE.md §4), so it runs on any onnxruntime provider in
 * float32 or float64, and float64 makes it checkable against finite differences.
 */

export interface LayerGradOptions {
  /** float64 makes every float input, constant and output double (for finite-difference checks). */
  dtype: 'float32' | 'float64';
}

/** Output names of the gradient graph. */
export const LAYER_GRAD_OUTPUTS = {
  /** Scalar ℒ = sq_err / sq_ref over the whole batch fed. */
  loss: 'loss',
  /** [H_kv, d, d] ∂ℒ/∂M_K. */
  gradK: 'grad_k_proj_m',
  /** [H_kv, d, d] ∂ℒ/∂M_V. */
  gradV: 'grad_v_proj_m',
  /** Scalar ‖Ŷ − Y‖²_F, as the decoder layer's `error` variant outputs it. */
  sqErr: 'sq_err',
  /** Scalar ‖Y‖²_F: the normaliser of this batch's loss and gradients (to recombine batches). */
  sqRef: 'sq_ref',
} as const;

/** Identifies the gradient graph for a spec and dtype: equal keys can share one session. */
export function layerGradKey(spec: ModelSpec, opts: LayerGradOptions): string {
  return ['grad', opts.dtype, decoderLayerKey(spec, { keyProjection: 'pre', valueProjection: true })].join(
    ':',
  );
}

/**
 * Loss and gradients of one decoder layer with keys projected pre-RoPE and values projected.
 * Inputs: the decoder layer's (LAYER_INPUTS names, `k_proj_m` and `v_proj_m` both required; feed the
 * identity to leave a side uncompressed) plus `y_ref` [B, T, D], the original layer output.
 * Outputs: LAYER_GRAD_OUTPUTS.
 *
 * Row-vector convention, N = B·T tokens. Backward, from ∂ℒ/∂Ŷ = 2(Ŷ − Y)/‖Y‖²:
 * - MLP branch Ŷ = h + f(norm₂(h)) W_downᵀ: G_h = G_Ŷ + norm₂ᵀ(f'ᵀ(G_Ŷ W_down));
 * - attention output h = x + ctx W_Oᵀ: G_ctx = G_h W_O;
 * - ctx = softmax(S) V̂: G_P = G_ctx V̂ᵀ, G_V̂ = Σ_group Pᵀ G_ctx, G_S = P ⊙ (G_P − rowsum(G_P ⊙ P));
 * - S = (q/√d) k_rotᵀ + mask: G_krot = Σ_group G_Sᵀ (q/√d);
 * - k_rot = k̂·cos + swap(k̂)·sin_signed: G_k̂ = G·cos + swap(G·sin_signed) (swap is its own transpose);
 * - k̂ = k·M_K: ∂ℒ/∂M_K,g = Σ_tokens k_gᵀ G_k̂,g; likewise ∂ℒ/∂M_V,g = Σ_tokens v_gᵀ G_V̂,g.
 * The norm before q/k/v needs no backward: nothing upstream of M depends on it.
 */
export function buildLayerGrad(spec: ModelSpec, opts: LayerGradOptions): Uint8Array {
  const I = LAYER_INPUTS;
  const O = LAYER_GRAD_OUTPUTS;
  const D = spec.hiddenSize;
  const H = spec.numHeads;
  const Hkv = spec.numKvHeads;
  const d = spec.headDim;
  const G = H / Hkv;
  const F = spec.intermediateSize;
  const elem = opts.dtype === 'float64' ? DataType.DOUBLE : DataType.FLOAT;
  const g = new GraphBuilder('decoder_layer_grad');
  const input = (name: string, dims: (number | string)[]) => g.input(name, dims, elem);
  const num = (v: number) => g.constFloat([v], [], elem);
  const op = (type: string, ...inputs: string[]) => g.op(type, inputs);
  const perm = (x: string, p: number[]) => g.op('Transpose', [x], { perm: attr.ints(p) });
  const reshape = (x: string, shape: string | number[]) =>
    g.op('Reshape', [x, typeof shape === 'string' ? shape : g.constInt64(shape)]);
  const mean = (x: string) => g.op('ReduceMean', [x, g.constInt64([-1])], { keepdims: attr.i(1) });
  const sumAxis = (x: string, axis: number) =>
    g.op('ReduceSum', [x, g.constInt64([axis])], { keepdims: attr.i(1) });

  const x = input(I.x, ['B', 'T', D]);
  const mask = input(I.mask, ['T', 'T']);
  const cos = spec.rope ? input(I.cos, ['T', 1, d]) : '';
  const sin = spec.rope ? input(I.sin, ['T', 1, d]) : '';
  const layerNormed = spec.norm.kind === 'layer';
  const attnNormW = input(I.attnNormW, [D]);
  const attnNormB = layerNormed ? input(I.attnNormB, [D]) : '';
  const wq = input(I.wq, [H * d, D]);
  const wk = input(I.wk, [Hkv * d, D]);
  const wv = input(I.wv, [Hkv * d, D]);
  const bq = spec.qkvBias ? input(I.bq, [H * d]) : undefined;
  const bk = spec.qkvBias ? input(I.bk, [Hkv * d]) : undefined;
  const bv = spec.qkvBias ? input(I.bv, [Hkv * d]) : undefined;
  const wo = input(I.wo, [D, H * d]);
  const bo = spec.oBias ? input(I.bo, [D]) : undefined;
  const mlpNormW = input(I.mlpNormW, [D]);
  const mlpNormB = layerNormed ? input(I.mlpNormB, [D]) : '';
  const wGate = spec.act === 'silu' ? input(I.wGate, [F, D]) : '';
  const wUp = input(I.wUp, [F, D]);
  const bUp = spec.mlpBias ? input(I.bUp, [F]) : undefined;
  const wDown = input(I.wDown, [D, F]);
  const bDown = spec.mlpBias ? input(I.bDown, [D]) : undefined;
  const mK = input(I.kProj, [Hkv, d, d]);
  const mV = input(I.vProj, [Hkv, d, d]);
  const yRef = input(I.yRef, ['B', 'T', D]);

  /**
   * RMSNorm or LayerNorm from primitives (LayerNormalization has no float64 kernel to rely on), keeping
   * what the backward needs: the normalised rows x̂ (before the gain) and r = 1/√(var + eps).
   */
  const norm = (v: string, w: string, b: string) => {
    const centred = layerNormed ? op('Sub', v, mean(v)) : v;
    const r = op('Reciprocal', op('Sqrt', op('Add', mean(op('Mul', centred, centred)), num(spec.norm.eps))));
    const xhat = op('Mul', centred, r);
    const scaled = op('Mul', xhat, w);
    return { out: layerNormed ? op('Add', scaled, b) : scaled, xhat, r };
  };
  /** ∂/∂v of norm(v) given G = ∂ℒ/∂norm(v): r·(gŵ − mean(gŵ) − x̂·mean(gŵ ⊙ x̂)), gŵ = G ⊙ w (RMS: no mean(gŵ)). */
  const normBackward = (gOut: string, n: { xhat: string; r: string }, w: string) => {
    const gw = op('Mul', gOut, w);
    const centred = layerNormed ? op('Sub', gw, mean(gw)) : gw;
    return op('Mul', n.r, op('Sub', centred, op('Mul', n.xhat, mean(op('Mul', gw, n.xhat)))));
  };
  /** Rotate-half RoPE on [.., d]: x·cos + swap(x)·sin_signed. */
  const swapHalves = (v: string) => {
    const [a, b] = g.opN('Split', [v, g.constInt64([d / 2, d / 2])], 2, { axis: attr.i(-1) });
    return g.op('Concat', [b, a], { axis: attr.i(-1) });
  };

  // ---- forward, keeping intermediates ----
  const bt = batchAndTime(g, x);
  const x2 = reshape(x, [-1, D]);
  const h1 = norm(x2, attnNormW, attnNormB).out;
  const q4 = reshape(linear(g, h1, wq, bq), shapeWith(g, bt, [H, d]));
  const k3 = reshape(linear(g, h1, wk, bk), [-1, Hkv, d]); // pre-projection keys [N, Hkv, d]
  const v3 = reshape(linear(g, h1, wv, bv), [-1, Hkv, d]); // pre-projection values [N, Hkv, d]
  // [N, Hkv, 1, d] · [Hkv, d, d]: one d×d product per head and row.
  const kHat = reshape(op('MatMul', reshape(k3, [-1, Hkv, 1, d]), mK), shapeWith(g, bt, [Hkv, d]));
  const vHat = reshape(op('MatMul', reshape(v3, [-1, Hkv, 1, d]), mV), shapeWith(g, bt, [Hkv, 1, d]));
  const rope = (v: string) => op('Add', op('Mul', v, cos), op('Mul', swapHalves(v), sin));
  const qRot = spec.rope ? rope(q4) : q4;
  const kRot = spec.rope ? rope(kHat) : kHat;
  const qScaled = op('Mul', qRot, num(1 / Math.sqrt(d)));
  // Grouped attention as in decoder-layer.ts: query head h = g·G + j uses KV head g.
  const q5 = perm(reshape(qScaled, shapeWith(g, bt, [Hkv, G, d])), [0, 2, 3, 1, 4]); // [B, Hkv, G, T, d]
  const k5 = perm(reshape(kRot, shapeWith(g, bt, [Hkv, 1, d])), [0, 2, 3, 1, 4]); // [B, Hkv, 1, T, d]
  const v5 = perm(vHat, [0, 2, 3, 1, 4]); // [B, Hkv, 1, T, d]
  const lastTwo = [0, 1, 2, 4, 3];
  const scores = op('Add', op('MatMul', q5, perm(k5, lastTwo)), mask);
  const probs = g.op('Softmax', [scores], { axis: attr.i(-1) }); // [B, Hkv, G, T, T]
  const ctx = reshape(perm(op('MatMul', probs, v5), [0, 3, 1, 2, 4]), [-1, H * d]);
  const h = op('Add', x2, linear(g, ctx, wo, bo));
  const n2 = norm(h, mlpNormW, mlpNormB);

  let act: string;
  let actBackward: (gAct: string) => string; // ∂ℒ/∂act → ∂ℒ/∂norm₂(h)
  if (spec.act === 'silu') {
    const gate = linear(g, n2.out, wGate);
    const up = linear(g, n2.out, wUp);
    const sg = op('Sigmoid', gate);
    const silu = op('Mul', gate, sg);
    act = op('Mul', silu, up);
    actBackward = (gAct) => {
      // silu'(z) = σ(z)·(1 + z·(1 − σ(z)))
      const dSilu = op('Mul', sg, op('Add', num(1), op('Mul', gate, op('Sub', num(1), sg))));
      const gGate = op('Mul', op('Mul', gAct, up), dSilu);
      const gUp = op('Mul', gAct, silu);
      return op('Add', op('MatMul', gGate, wGate), op('MatMul', gUp, wUp));
    };
  } else {
    // gelu_new(u) = ½·u·(1 + tanh(c·(u + a·u³))), c = √(2/π), a = 0.044715
    const c = Math.sqrt(2 / Math.PI);
    const a = 0.044715;
    const u = linear(g, n2.out, wUp, bUp);
    const u2 = op('Mul', u, u);
    const th = op('Tanh', op('Mul', op('Mul', u, op('Add', num(1), op('Mul', u2, num(a)))), num(c)));
    const half = op('Mul', op('Add', num(1), th), num(0.5));
    act = op('Mul', u, half);
    actBackward = (gAct) => {
      // gelu_new'(u) = ½(1 + t) + ½·u·(1 − t²)·c·(1 + 3a·u²)
      const sech2 = op('Sub', num(1), op('Mul', th, th));
      const inner = op('Mul', op('Add', num(1), op('Mul', u2, num(3 * a))), num(0.5 * c));
      const dGelu = op('Add', half, op('Mul', op('Mul', u, sech2), inner));
      return op('MatMul', op('Mul', gAct, dGelu), wUp);
    };
  }
  const y = op('Add', h, linear(g, act, wDown, bDown));

  // ---- loss ----
  const diff = op('Sub', y, reshape(yRef, [-1, D]));
  const all = { keepdims: attr.i(0) };
  const sqErr = g.op('ReduceSumSquare', [diff], all);
  const sqRef = g.op('ReduceSumSquare', [yRef], all);
  g.output(O.sqErr, sqErr, [], elem);
  g.output(O.sqRef, sqRef, [], elem);
  g.output(O.loss, op('Div', sqErr, sqRef), [], elem);

  // ---- backward ----
  const gY = op('Mul', diff, op('Div', num(2), sqRef)); // [N, D]
  const gH = op('Add', gY, normBackward(actBackward(op('MatMul', gY, wDown)), n2, mlpNormW));
  const gCtx = perm(reshape(op('MatMul', gH, wo), shapeWith(g, bt, [Hkv, G, d])), [0, 2, 3, 1, 4]);
  const gProbs = op('MatMul', gCtx, perm(v5, lastTwo)); // [B, Hkv, G, T, T]
  const gV5 = sumAxis(op('MatMul', perm(probs, lastTwo), gCtx), 2); // [B, Hkv, 1, T, d]
  const gScores = op('Mul', probs, op('Sub', gProbs, sumAxis(op('Mul', gProbs, probs), -1)));
  const gK5 = sumAxis(op('MatMul', perm(gScores, lastTwo), q5), 2); // [B, Hkv, 1, T, d]
  const gKRot = reshape(perm(gK5, [0, 3, 1, 2, 4]), shapeWith(g, bt, [Hkv, d]));
  const gKHat = spec.rope ? op('Add', op('Mul', gKRot, cos), swapHalves(op('Mul', gKRot, sin))) : gKRot;
  const gVHat = perm(gV5, [0, 3, 1, 2, 4]); // [B, T, Hkv, 1, d]
  // ∂ℒ/∂M_g = Σ_n x_n,gᵀ G_n,g: [Hkv, d, N] · [Hkv, N, d].
  const headGrad = (pre: string, grad: string) =>
    op('MatMul', perm(pre, [1, 2, 0]), perm(reshape(grad, [-1, Hkv, d]), [1, 0, 2]));
  g.output(O.gradK, headGrad(k3, gKHat), [Hkv, d, d], elem);
  g.output(O.gradV, headGrad(v3, gVHat), [Hkv, d, d], elem);
  return g.build();
}
