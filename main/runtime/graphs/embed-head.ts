import type { ModelSpec } from '../../model/types.ts';
import { DataType } from '../onnx/proto.ts';
import { attr, GraphBuilder } from '../onnx/builder.ts';
import { blockOf, capLogits, norm, scaleEmbedding } from './block.ts';
import { linear } from './common.ts';

export const EMBED_INPUTS = {
  ids: 'ids',
  table: 'table',
  positions: 'pos_table',
  posIds: 'pos_ids',
} as const;
export const HEAD_INPUTS = {
  h: 'h',
  normW: 'norm_w',
  normB: 'norm_b',
  lmHead: 'lm_head',
  targets: 'targets',
};

export function embedKey(spec: ModelSpec): string {
  const r = spec.block;
  return [
    'embed',
    spec.hiddenSize,
    spec.vocabSize,
    r.rope ? 'rope' : `pos${spec.maxPositions}`,
    `scale${r.embedScale}`,
  ].join(':');
}

/**
 * ids [B, T] (int32) → hidden [B, T, D]: token rows times the recipe's embedScale; a model without RoPE
 * (GPT-2) adds its learned position rows.
 */
export function buildEmbedding(spec: ModelSpec): Uint8Array {
  const D = spec.hiddenSize;
  const g = new GraphBuilder('embedding');
  const ids = g.input(EMBED_INPUTS.ids, ['B', 'T'], DataType.INT32);
  const table = g.input(EMBED_INPUTS.table, [spec.vocabSize, D]);
  let x = scaleEmbedding(blockOf(g, spec.block), g.op('Gather', [table, ids], { axis: attr.i(0) }));
  if (!spec.block.rope) {
    const positions = g.input(EMBED_INPUTS.positions, [spec.maxPositions, D]);
    const posIds = g.input(EMBED_INPUTS.posIds, ['T'], DataType.INT32);
    x = g.op('Add', [x, g.op('Gather', [positions, posIds], { axis: attr.i(0) })]);
  }
  g.output('x', x, ['B', 'T', D]);
  return g.build();
}

export function headKey(spec: ModelSpec): string {
  const r = spec.block;
  return [
    'head',
    spec.hiddenSize,
    spec.vocabSize,
    r.norm.kind,
    r.norm.eps,
    `offset${r.norm.offset}`,
    `cap${r.finalSoftcap ?? '-'}`,
  ].join(':');
}

/**
 * Final norm, LM head (logits capped when the recipe has a final softcap) and per-token cross-entropy:
 * h [N, D], targets [N] → nll [N] and logits [N, V]. Fetching only `nll` still computes the logits but
 * never copies them out.
 */
export function buildHead(spec: ModelSpec): Uint8Array {
  const D = spec.hiddenSize;
  const V = spec.vocabSize;
  const g = new GraphBuilder('lm_head');
  const h = g.input(HEAD_INPUTS.h, ['N', D]);
  const normW = g.input(HEAD_INPUTS.normW, [D]);
  const lmHead = g.input(HEAD_INPUTS.lmHead, [V, D]);
  const targets = g.input(HEAD_INPUTS.targets, ['N'], DataType.INT32);
  const b = blockOf(g, spec.block);
  const normB = spec.block.norm.kind === 'layer' ? g.input(HEAD_INPUTS.normB, [D]) : undefined;
  const logits = capLogits(b, linear(g, norm(b, h, { w: normW, b: normB }).out, lmHead));
  const logProbs = g.op('LogSoftmax', [logits], { axis: attr.i(-1) });
  const picked = g.op('GatherElements', [logProbs, g.op('Unsqueeze', [targets, g.constInt64([1])])], {
    axis: attr.i(1),
  });
  g.output('nll', g.op('Neg', [g.op('Reshape', [picked, g.constInt64([-1])])]), ['N']);
  g.output('logits', logits, ['N', V]);
  return g.build();
}
