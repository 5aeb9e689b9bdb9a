/**
 * Writes the compressed model's safetensors (ARCHITECTURE.md §7): every tensor the compressed layout
 * expects, in the original's dtype; attention tensors of compressed layers come from the narrowed layer,
 * everything else is copied byte for byte. Tensors are produced one at a time as the writer reaches them.
 */
import { RankwiseError } from '../core/errors.ts';
import type { FloatTensor } from '../model/arch/common.ts';
import { writeCheckpoint } from '../model/checkpoint.ts';
import type { TensorToWrite } from '../model/safetensors.ts';
import type { CompressedModel } from './compressed-model.ts';

/** Shards start past this size, as ARCHITECTURE.md §7 asks (the index is written beside them). */
export const DEFAULT_MAX_SHARD_BYTES = 4 * 2 ** 30;

export const RANKWISE_METADATA = { rankwise: '1' } as const;

export interface WriteOptions {
  maxShardBytes?: number;
  /** Called as each layer's compressed tensors are produced. */
  onLayer?: (layer: number) => void;
  signal?: AbortSignal;
}

export async function writeCompressedCheckpoint(
  dir: string,
  cm: CompressedModel,
  compressed: readonly boolean[],
  opts: WriteOptions = {},
): Promise<string[]> {
  const { checkpoint: ckpt, adapter } = cm.source;
  const spec = cm.spec;
  const prefixes = Array.from({ length: spec.numLayers }, (_, i) => adapter.attentionPrefix(ckpt, i));
  const layerOf = (name: string) => prefixes.findIndex((p) => name.startsWith(p));

  const produced = new Map<number, Promise<Map<string, FloatTensor>>>();
  const layerTensors = (i: number) => {
    let p = produced.get(i);
    if (!p) {
      p = (async () => {
        if (opts.signal?.aborted) throw new RankwiseError('cancelled', 'export cancelled');
        const n = await cm.loadNarrowLayer(i);
        const out = new Map<string, FloatTensor>();
        for (const t of adapter.attentionTensors(ckpt, spec, i, n.weights)) out.set(t.name, t);
        const shape = [spec.numKvHeads, spec.headDim, n.layout.kRank];
        if (n.kBasis)
          out.set(`${prefixes[i]}k_basis`, { name: `${prefixes[i]}k_basis`, shape, data: n.kBasis });
        if (n.qBasis)
          out.set(`${prefixes[i]}q_basis`, { name: `${prefixes[i]}q_basis`, shape, data: n.qBasis });
        opts.onLayer?.(i);
        return out;
      })();
      produced.set(i, p);
      // tensors of one layer are written together (name order); drop layers already passed
      for (const k of produced.keys()) if (k < i - 1) produced.delete(k);
    }
    return p;
  };

  const expected = adapter.expectedTensors(ckpt, spec);
  const names = new Set(expected.map((t) => t.name));
  const tensors: TensorToWrite[] = [];
  for (const t of expected) {
    const layer = layerOf(t.name);
    const original = ckpt.has(t.name) ? ckpt.info(t.name) : null;
    if (layer < 0 || !compressed[layer]) {
      if (!original) throw new RankwiseError('internal', `source lacks tensor "${t.name}"`);
      tensors.push({
        name: t.name,
        dtype: original.dtype,
        shape: original.shape,
        data: () => ckpt.readBytes(t.name),
      });
      continue;
    }
    tensors.push({
      name: t.name,
      dtype: original?.dtype ?? spec.dtype,
      shape: t.shape,
      data: async () => {
        const made = (await layerTensors(layer)).get(t.name);
        if (!made) throw new RankwiseError('internal', `no compressed data for "${t.name}"`);
        return made.data;
      },
    });
  }
  // buffers and anything else the adapter does not list (e.g. a stored RoPE table) travel unchanged
  for (const name of ckpt.names()) {
    if (names.has(name)) continue;
    const info = ckpt.info(name);
    tensors.push({ name, dtype: info.dtype, shape: info.shape, data: () => ckpt.readBytes(name) });
  }
  return writeCheckpoint(dir, tensors, {
    maxShardBytes: opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES,
    metadata: { ...RANKWISE_METADATA },
  });
}
