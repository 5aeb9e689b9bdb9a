import type { ModelSpec } from '../../model/types.ts';
import { attr, GraphBuilder } from '../onnx/builder.ts';
import { DataType } from '../onnx/proto.ts';
import {
  attend,
  attentionResidual,
  blockOf,
  mlpResidual,
  norm,
  projectHeads,
  queryFactor,
  scalar,
  scaleQueries,
  thinHeads,
  thinRotate,
} from './block.ts';
import { batchAndTime, linear, shapeWith } from './common.ts';
import {
  declareLayerInputs,
  declareThinInputs,
  decoderLayerKey,
  LAYER_INPUTS,
  layerDims,
} from './decoder-layer.ts';

/**
 * The gradient of StiefAttention's layer loss (methods.md §8.2)
 *
 *   ℒ = ‖Ŷ − Y‖²_F / ‖Y‖²_F
 *
 * with respect to the per-KV-head key and value projections M_K,g and M_V,g (the `keyProjection: 'pre'`
 * + `valueProjection` decoder layer: k → k·M_K,g before RoPE, v → v·M_V,g). The backward pass is derived
 * by hand and written as plain ONNX ops (ARCHITECTURE.md §4), so it runs on any onnxruntime provider in
 * float32 or float64, and float64 makes it checkable against finite differences. The forward is block.ts's,
 * as every layer graph's is, so the loss is the decoder layer's `error` variant.
 */

export interface LayerGradOptions {
  /** float64 makes every float input, constant and output double (for finite-difference checks). */
  dtype: 'float32' | 'float64';
  /**
   * `pre`: keys through M_K before RoPE (the default); `thin`: attention in the thin space (R3), queries
   * times B and keys times A rotated by the fed thin tables, with gradients for A and B.
   */
  keys?: 'pre' | 'thin';
  /** false: the forward and the loss only (the thin space's held-out error at sampled rows). */
  grad?: boolean;
}

/** Inputs of the gradient graph beyond the decoder layer's. */
export const LAYER_GRAD_INPUTS = {
  /**
   * [S] int32, ascending: the positions whose outputs the loss compares (every one, or a sample of a wide
   * model's). Keys and values cover the whole window; queries, the residual and the MLP only these rows.
   */
  rows: 'rows',
} as const;

/** Output names of the gradient graph. */
export const LAYER_GRAD_OUTPUTS = {
  /** Scalar ℒ = sq_err / sq_ref over the whole batch fed. */
  loss: 'loss',
  /** [H_kv, d, d] ∂ℒ/∂M_K. */
  gradK: 'grad_k_proj_m',
  /** [H_kv, d, d] ∂ℒ/∂M_V. */
  gradV: 'grad_v_proj_m',
  /** `thin` keys: [H_kv, d, r] ∂ℒ/∂A and ∂ℒ/∂B. */
  gradThinA: 'grad_thin_a',
  gradThinB: 'grad_thin_b',
  /** Scalar ‖Ŷ − Y‖²_F, as the decoder layer's `error` variant outputs it. */
  sqErr: 'sq_err',
  /** Scalar ‖Y‖²_F: the normaliser of this batch's loss and gradients (to recombine batches). */
  sqRef: 'sq_ref',
} as const;

/** Identifies the gradient graph for a spec and dtype: equal keys can share one session. */
export function layerGradKey(spec: ModelSpec, opts: LayerGradOptions): string {
  const keys = opts.keys ?? 'pre';
  return [
    opts.grad === false ? 'loss' : 'grad',
    opts.dtype,
    decoderLayerKey(spec, { keyProjection: keys, valueProjection: true }),
  ].join(':');
}

/**
 * Loss and gradients of one decoder layer with keys projected pre-RoPE and values projected.
 * Inputs: the decoder layer's (LAYER_INPUTS names, `k_proj_m` and `v_proj_m` both required; feed the
 * identity to leave a side uncompressed), `rows` (LAYER_GRAD_INPUTS) and `y_ref` [B, S, D], the original
 * layer output at those rows. The loss at a row is exact whatever rows are left out: causal attention at
 * a position reads nothing later, and the projections' gradient flows through every key and value.
 * Outputs: LAYER_GRAD_OUTPUTS.
 *
 * Row-vector convention, N = B·T tokens (B·S rows of queries and outputs). Backward, from ∂ℒ/∂Ŷ = 2(Ŷ − Y)/‖Y‖², each step the backward
 * of a block.ts piece:
 * - MLP branch Ŷ = h + post₂(f(norm₂(h))): G_h = G_Ŷ + norm₂ᵀ(fᵀ(post₂ᵀ(G_Ŷ)));
 * - attention output h = x + post₁(ctx W_Oᵀ): G_ctx = post₁ᵀ(G_h) W_O;
 * - ctx = softmax(S) V̂: G_P = G_ctx V̂ᵀ, G_V̂ = Σ_group Pᵀ G_ctx, G_S = P ⊙ (G_P − rowsum(G_P ⊙ P));
 * - S = cap·tanh((s·q) k_rotᵀ / cap) + mask (no cap: (s·q) k_rotᵀ + mask): G_krot = Σ_group G_rawᵀ (s·q/cap);
 * - k_rot = k̂·cos + swap(k̂)·sin_signed: G_k̂ = G·cos + swap(G·sin_signed) (swap is its own transpose);
 * - k̂ = k·M_K: ∂ℒ/∂M_K,g = Σ_tokens k_gᵀ G_k̂,g; likewise ∂ℒ/∂M_V,g = Σ_tokens v_gᵀ G_V̂,g.
 * The norm before q/k/v and the per-head key norm need no backward: nothing upstream of M depends on
 * them. The mask (causal or a sliding window) is fed, so windows need nothing here.
 */
export function buildLayerGrad(spec: ModelSpec, opts: LayerGradOptions): Uint8Array {
  const I = LAYER_INPUTS;
  const O = LAYER_GRAD_OUTPUTS;
  const { D, H, Hkv, d, G, hasRope } = layerDims(spec);
  const elem = opts.dtype === 'float64' ? DataType.DOUBLE : DataType.FLOAT;
  const g = new GraphBuilder('decoder_layer_grad');
  const b = blockOf(g, spec.block, { elem, grad: true });
  const num = (v: number) => scalar(b, v);
  const op = (type: string, ...inputs: string[]) => g.op(type, inputs);
  const perm = (x: string, p: number[]) => g.op('Transpose', [x], { perm: attr.ints(p) });
  const reshape = (x: string, shape: string | number[]) =>
    g.op('Reshape', [x, typeof shape === 'string' ? shape : g.constInt64(shape)]);

  const { x, mask, cos, sin, weights: w } = declareLayerInputs(g, spec, elem);
  const thin = opts.keys === 'thin' ? declareThinInputs(g, Hkv, d, elem) : null;
  const mK = thin ? '' : g.input(I.kProj, [Hkv, d, d], elem);
  const mV = g.input(I.vProj, [Hkv, d, d], elem);
  const rows = g.input(LAYER_GRAD_INPUTS.rows, ['S'], DataType.INT32);
  const yRef = g.input(I.yRef, ['B', 'S', D], elem);
  const atRows = (t: string, axis: number) => g.op('Gather', [t, rows], { axis: attr.i(axis) });

  /** Rotate-half RoPE on [.., d]: x·cos + swap(x)·sin_signed. */
  const swapHalves = (v: string) => {
    const [a, c] = g.opN('Split', [v, g.constInt64([d / 2, d / 2])], 2, { axis: attr.i(-1) });
    return g.op('Concat', [c, a], { axis: attr.i(-1) });
  };

  // ---- forward, keeping intermediates ----
  const bt = batchAndTime(g, x);
  const h1 = norm(b, reshape(x, [-1, D]), w.attnNorm).out;
  const xr = atRows(x, 1);
  const btr = batchAndTime(g, xr);
  const x2 = reshape(xr, [-1, D]);
  const q4 = projectHeads(b, norm(b, x2, w.attnNorm).out, w.q, shapeWith(g, btr, [H, d]), w.qNorm);
  const k3 = projectHeads(b, h1, w.k, g.constInt64([-1, Hkv, d]), w.kNorm); // pre-projection keys [N, Hkv, d]
  const v3 = reshape(linear(g, h1, w.v.w, w.v.b), [-1, Hkv, d]); // pre-projection values [N, Hkv, d]
  const vHat = reshape(op('MatMul', reshape(v3, [-1, Hkv, 1, d]), mV), shapeWith(g, bt, [Hkv, 1, d]));
  const rope = (v: string, c: string, s: string) => op('Add', op('Mul', v, c), op('Mul', swapHalves(v), s));
  // Thin space (R3): q·B and k·A rotated by the thin tables, r wide (fed); else k·M_K, then RoPE, d wide.
  const qk = thin ? -1 : d;
  const thinQK = thin && {
    q: thinRotate(
      b,
      thinHeads(b, q4, thin.b, { kvHeads: Hkv, group: G, d }, shapeWith(g, btr, [H, -1])),
      atRows(thin.cos, 0),
      atRows(thin.sin, 0),
      thin.swap,
    ),
    k: thinRotate(
      b,
      thinHeads(b, k3, thin.a, { kvHeads: Hkv, group: 1, d }, shapeWith(g, bt, [Hkv, -1])),
      thin.cos,
      thin.sin,
      thin.swap,
    ),
  };
  // [N, Hkv, 1, d] · [Hkv, d, d]: one d×d product per head and row.
  const kHat = thin
    ? ''
    : reshape(op('MatMul', reshape(k3, [-1, Hkv, 1, d]), mK), shapeWith(g, bt, [Hkv, d]));
  const preQ = () => (hasRope ? rope(q4, atRows(cos, 0), atRows(sin, 0)) : q4);
  const preK = () => (hasRope ? rope(kHat, cos, sin) : kHat);
  const qRot = thinQK ? thinQK.q.out : preQ();
  const kRot = thinQK ? thinQK.k.out : preK();
  // Grouped attention as in decoder-layer.ts: query head h = g·G + j uses KV head g.
  const q5 = perm(reshape(scaleQueries(b, qRot), shapeWith(g, btr, [Hkv, G, qk])), [0, 2, 3, 1, 4]); // [B, Hkv, G, S, w]
  const k5 = perm(reshape(kRot, shapeWith(g, bt, [Hkv, 1, qk])), [0, 2, 3, 1, 4]); // [B, Hkv, 1, T, w]
  const v5 = perm(vHat, [0, 2, 3, 1, 4]); // [B, Hkv, 1, T, d]
  const attention = attend(b, q5, perm(k5, [0, 1, 2, 4, 3]), v5, atRows(mask, 0));
  const ctx = reshape(perm(attention.ctx, [0, 3, 1, 2, 4]), [-1, H * d]);
  const attnBranch = attentionResidual(b, x2, ctx, w.o, w.postAttnNorm);
  const mlpBranch = mlpResidual(b, attnBranch.out, w);
  const y = mlpBranch.out;

  // ---- loss ----
  const diff = op('Sub', y, reshape(yRef, [-1, D]));
  const all = { keepdims: attr.i(0) };
  const sqErr = g.op('ReduceSumSquare', [diff], all);
  const sqRef = g.op('ReduceSumSquare', [yRef], all);
  g.output(O.sqErr, sqErr, [], elem);
  g.output(O.sqRef, sqRef, [], elem);
  g.output(O.loss, op('Div', sqErr, sqRef), [], elem);

  if (opts.grad === false) return g.build();

  // ---- backward ----
  const gY = op('Mul', diff, op('Div', num(2), sqRef)); // [N, D]
  const gCtx = perm(
    reshape(attnBranch.backward(mlpBranch.backward(gY)), shapeWith(g, btr, [Hkv, G, d])),
    [0, 2, 3, 1, 4],
  );
  const attentionGrads = attention.backward(gCtx);
  const { gKeys: gK5, gValues: gV5 } = attentionGrads; // [B, Hkv, 1, T, w] and [B, Hkv, 1, T, d]
  const gKRot = reshape(perm(gK5, [0, 3, 1, 2, 4]), shapeWith(g, bt, [Hkv, qk]));
  const gVHat = perm(gV5, [0, 3, 1, 2, 4]); // [B, T, Hkv, 1, d]
  // ∂ℒ/∂F_g = Σ_n x_n,gᵀ G_n,g over the tokens (and group heads) of KV head g: [Hkv, d, N] · [Hkv, N, w].
  const headGrad = (pre: string, grad: string, rows: string | number[]) =>
    op('MatMul', perm(reshape(pre, [-1, Hkv, d]), [1, 2, 0]), perm(reshape(grad, rows), [1, 0, 2]));
  g.output(O.gradV, headGrad(v3, gVHat, [-1, Hkv, d]), [Hkv, d, d], elem);
  if (thin && thinQK) {
    // r is fed: shapes that end in it take it from A's shape
    const r = g.op('Slice', [g.op('Shape', [thin.a]), g.constInt64([2]), g.constInt64([3])]);
    const endingInR = (lead: number[]) => g.op('Concat', [g.constInt64(lead), r], { axis: attr.i(0) });
    // queries: ∂ℒ/∂(scaled q) back through the scale and the thin rotation, summed over each group
    const gQRot = op(
      'Mul',
      reshape(perm(attentionGrads.gQueries, [0, 3, 1, 2, 4]), shapeWith(g, btr, [H, -1])),
      num(queryFactor(b)),
    );
    const gQThin = perm(reshape(thinQK.q.backward(gQRot), endingInR([-1, Hkv, G])), [1, 0, 2, 3]); // [Hkv, N, G, r]
    const qGrouped = perm(reshape(q4, [-1, Hkv, G, d]), [1, 3, 0, 2]); // [Hkv, d, N, G]
    const gradB = op('MatMul', reshape(qGrouped, [Hkv, d, -1]), reshape(gQThin, endingInR([Hkv, -1])));
    const gradA = headGrad(k3, thinQK.k.backward(gKRot), endingInR([-1, Hkv]));
    g.output(O.gradThinA, gradA, [Hkv, d, 'r'], elem);
    g.output(O.gradThinB, gradB, [Hkv, d, 'r'], elem);
    return g.build();
  }
  const gKHat = hasRope ? op('Add', op('Mul', gKRot, cos), swapHalves(op('Mul', gKRot, sin))) : gKRot;
  g.output(O.gradK, headGrad(k3, gKHat, [-1, Hkv, d]), [Hkv, d, d], elem);
  return g.build();
}
