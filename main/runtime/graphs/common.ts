import { attr, type GraphBuilder } from '../onnx/builder.ts';

/** y = x·Wᵀ + b for a row-major [out, in] weight: Gemm transposes on the fly, so weights are fed as read. */
export function linear(g: GraphBuilder, x: string, w: string, b?: string): string {
  return g.op('Gemm', b ? [x, w, b] : [x, w], { transB: attr.i(1) });
}

/**
 * Rotary embedding in the rotate_half convention on [..., T, heads, d] with cos/sin fed as [T, 1, d].
 * `sin` carries the sign of rotate_half (−sin on the first half), so the rotation is a swap of halves.
 */
export function rope(g: GraphBuilder, x: string, cos: string, sin: string, headDim: number): string {
  const half = headDim / 2;
  const [a, b] = g.opN('Split', [x, g.constInt64([half, half])], 2, { axis: attr.i(-1) });
  const swapped = g.op('Concat', [b, a], { axis: attr.i(-1) });
  return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [swapped, sin])]);
}

/** The [B, T] prefix of x's shape followed by fixed trailing dims, for Reshape. */
export function shapeWith(g: GraphBuilder, bt: string, trailing: number[]): string {
  return g.op('Concat', [bt, g.constInt64(trailing)], { axis: attr.i(0) });
}

/** [B, T] of a [B, T, D] input. */
export function batchAndTime(g: GraphBuilder, x: string): string {
  return g.op('Slice', [g.op('Shape', [x]), g.constInt64([0]), g.constInt64([2])]);
}
