/**
 * The error-rank profile's graph: one decoder layer run at P rank pairs at once, reduced to each pair's
 * squared output error. It computes the same block as the decoder-layer graph (block.ts), arranged for a
 * sweep:
 *
 * - the key and value projections of the original layer are computed once and compressed P ways (a
 *   d×d product per head and token, against the projections' D×d), so a pair costs the attention, the
 *   output projection and the MLP, not the whole layer;
 * - queries, the residual stream and the MLP run only at `rows`, a sample of the window's positions, each
 *   attending over every earlier key of the full window. The error at a position is exact (causal
 *   attention needs nothing later); sampling positions is what makes a wide model's profile cheap.
 *
 * With every position in `rows` and P = 1 it computes what the error variant of the decoder-layer graph
 * does, up to float32 rounding.
 */
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
  scaleQueries,
} from './block.ts';
import { batchAndTime, linear, rope, shapeWith } from './common.ts';
import { declareLayerInputs, layerDims, layerShapeKey } from './decoder-layer.ts';

export const SWEEP_INPUTS = {
  /** [S] int32: the positions whose outputs are compared, ascending. */
  rows: 'rows',
  /**
   * [P, H_kv, d, d] each: per pair and KV head, the factors of keys k → k·A·Bᵀ, their columns beyond the
   * rank zero (A = B = I leaves a side uncompressed). The product is formed here, not in JavaScript.
   */
  kA: 'k_a_sweep',
  kB: 'k_b_sweep',
  vA: 'v_a_sweep',
  vB: 'v_b_sweep',
  /** [B, S, D]: the original layer's output at `rows`. */
  yRows: 'y_ref_rows',
} as const;

export const SWEEP_OUTPUTS = {
  /** [P]: ‖ŷ − y‖² over the sampled rows, per pair. */
  sqErr: 'sq_err',
  /** []: ‖y‖² over the sampled rows. */
  sqRef: 'sq_ref',
} as const;

/** Keys compressed before RoPE (R1) or after it (R2); without RoPE the two are the same graph. */
export type SweepKeySpace = 'pre' | 'post';

export function errorSweepKey(spec: ModelSpec, keys: SweepKeySpace): string {
  return ['sweep', spec.block.rope ? keys : 'folded', layerShapeKey(spec)].join(':');
}

export function buildErrorSweep(spec: ModelSpec, keys: SweepKeySpace): Uint8Array {
  const X = SWEEP_INPUTS;
  const { D, H, Hkv, d, G, hasRope } = layerDims(spec);
  const g = new GraphBuilder('error_sweep');
  const b = blockOf(g, spec.block);
  const { x, mask, cos, sin, weights: w } = declareLayerInputs(g, spec);
  const rows = g.input(X.rows, ['S'], DataType.INT32);
  const factors = (a: string, bName: string) =>
    g.op('MatMul', [
      g.input(a, ['P', Hkv, d, d]),
      g.op('Transpose', [g.input(bName, ['P', Hkv, d, d])], { perm: attr.ints([0, 1, 3, 2]) }),
    ]);
  const kProj = factors(X.kA, X.kB);
  const vProj = factors(X.vA, X.vB);
  const yRows = g.input(X.yRows, ['B', 'S', D]);
  const P = g.op('Slice', [g.op('Shape', [kProj]), g.constInt64([0]), g.constInt64([1])]);

  // Keys and values of the whole window, once; then P compressed copies [P, B, T, H_kv, d].
  const bt = batchAndTime(g, x);
  const h1 = norm(b, g.op('Reshape', [x, g.constInt64([-1, D])]), w.attnNorm).out;
  const heads = shapeWith(g, bt, [Hkv, d]);
  let k = projectHeads(b, h1, w.k, heads, w.kNorm);
  const v = g.op('Reshape', [linear(g, h1, w.v.w, w.v.b), heads]);
  const perPair = g.op('Concat', [P, bt, g.constInt64([Hkv, 1, d])], { axis: attr.i(0) });
  const compress = (t: string, m: string) =>
    g.op('Reshape', [
      g.op('MatMul', [
        g.op('Reshape', [t, g.constInt64([1, -1, Hkv, 1, d])]),
        g.op('Unsqueeze', [m, g.constInt64([1])]),
      ]),
      perPair,
    ]);
  if (hasRope && keys === 'post') k = rope(g, k, cos, sin, d);
  // [P, B, T, H_kv, 1, d]; RoPE's [T, 1, d] tables broadcast over the pair axis as over the batch
  let kP = compress(k, kProj);
  if (hasRope && keys === 'pre')
    kP = rope(
      g,
      kP,
      g.op('Unsqueeze', [cos, g.constInt64([1])]),
      g.op('Unsqueeze', [sin, g.constInt64([1])]),
      d,
    );
  const vP = compress(v, vProj);

  // Queries, residual and MLP at the sampled rows only.
  const xr = g.op('Gather', [x, rows], { axis: attr.i(1) });
  const btr = batchAndTime(g, xr);
  const xr2 = g.op('Reshape', [xr, g.constInt64([-1, D])]);
  const hr = norm(b, xr2, w.attnNorm).out;
  let q = projectHeads(b, hr, w.q, shapeWith(g, btr, [H, d]), w.qNorm);
  if (hasRope) {
    const at = (t: string) => g.op('Gather', [t, rows], { axis: attr.i(0) });
    q = rope(g, q, at(cos), at(sin), d);
  }
  // [B, H_kv, G, S, d] against keys [P, B, H_kv, 1, d, T]: the pair axis broadcasts in front.
  const q5 = g.op('Transpose', [g.op('Reshape', [scaleQueries(b, q), shapeWith(g, btr, [Hkv, G, d])])], {
    perm: attr.ints([0, 2, 3, 1, 4]),
  });
  const kT = g.op('Transpose', [kP], { perm: attr.ints([0, 1, 3, 4, 5, 2]) });
  const v6 = g.op('Transpose', [vP], { perm: attr.ints([0, 1, 3, 4, 2, 5]) });
  const maskRows = g.op('Gather', [mask, rows], { axis: attr.i(0) });
  const { ctx } = attend(b, q5, kT, v6, maskRows);
  // [P, B, H_kv, G, S, d] → rows in (pair, batch, position) order
  const merged = g.op('Reshape', [
    g.op('Transpose', [ctx], { perm: attr.ints([0, 1, 4, 2, 3, 5]) }),
    g.constInt64([-1, H * d]),
  ]);
  const residual = g.op('Tile', [xr2, g.op('Concat', [P, g.constInt64([1])], { axis: attr.i(0) })]);
  const h = attentionResidual(b, residual, merged, w.o, w.postAttnNorm).out;
  const y = mlpResidual(b, h, w).out;

  const diff = g.op('Sub', [
    g.op('Reshape', [y, g.op('Concat', [P, g.constInt64([-1])], { axis: attr.i(0) })]),
    g.op('Reshape', [yRows, g.constInt64([1, -1])]),
  ]);
  const O = SWEEP_OUTPUTS;
  g.output(O.sqErr, g.op('ReduceSumSquare', [diff, g.constInt64([1])], { keepdims: attr.i(0) }), ['P']);
  g.output(O.sqRef, g.op('ReduceSumSquare', [yRows], { keepdims: attr.i(0) }), []);
  return g.build();
}
