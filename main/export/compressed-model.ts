/**
 * The compressed model in memory as the export writes it: each layer narrowed (values folded, keys folded
 * or narrowed with their bases) and rounded to the checkpoint's dtype, one layer at a time. The writer,
 * the ONNX builder and the verification's reference all read layers from here, so they see the same
 * numbers the files will hold.
 */
import { decodeToFloat32, encodeFromFloat32 } from '../model/dtype.ts';
import type { ModelHandle } from '../model/model.ts';
import type { KvLayerLayout } from '../model/kv-layout.ts';
import type { EmbeddingWeights, Linear, ModelSpec } from '../model/types.ts';
import {
  compressionLayout,
  expandLayer,
  keyBases,
  keyProjection,
  narrowLayer,
  type NarrowLayer,
} from '../model/fold.ts';
import type { LayerCompression } from '../core/kv.ts';
import type { WeightSource } from '../runtime/runner.ts';

export interface CompressedModel {
  /** The source spec with `kvCompression` set: the spec the exported folder will load as. */
  spec: ModelSpec;
  source: ModelHandle;
  layouts: KvLayerLayout[];
  /** Layer i's key bases as stored (rounded to the dtype). */
  bases(i: number): { kBasis?: Float32Array; qBasis?: Float32Array };
  loadNarrowLayer(i: number): Promise<NarrowLayer>;
  loadEmbeddings(): Promise<EmbeddingWeights>;
  /** Drops the layers kept for the next reader (two folded layers: 0.5 GiB at 1B) between stages. */
  forgetLayers(): void;
}

/** Rounds float32 values to what `dtype` stores (identity for F32). */
function roundTo(values: Float32Array, dtype: ModelSpec['dtype']): Float32Array {
  if (dtype === 'F32') return values;
  return decodeToFloat32(encodeFromFloat32(values, dtype), dtype)!;
}

function roundLinear(l: Linear, dtype: ModelSpec['dtype']): Linear {
  return { ...l, weight: roundTo(l.weight, dtype), bias: l.bias && roundTo(l.bias, dtype) };
}

export function compressedModel(
  source: ModelHandle,
  layers: readonly (LayerCompression | null)[],
): CompressedModel {
  const spec0 = source.spec;
  const dt = spec0.dtype;
  const at = (i: number) => layers[i] ?? null;
  const layouts = Array.from({ length: spec0.numLayers }, (_, i) => compressionLayout(spec0, at(i)));
  const spec: ModelSpec = { ...spec0, kvCompression: layouts };
  // The bases are small; round them once so every reader sees the stored values.
  const bases = layouts.map((_, i) => {
    const b = keyBases(spec0, at(i));
    return { kBasis: b.kBasis && roundTo(b.kBasis, dt), qBasis: b.qBasis && roundTo(b.qBasis, dt) };
  });
  // The writer asks for a layer's tensors one after another: keep the last two layers rather than
  // folding each again.
  const cache = new Map<number, Promise<NarrowLayer>>();
  const loadNarrowLayer = (i: number) => {
    let p = cache.get(i);
    if (!p) {
      p = (async () => {
        const n = narrowLayer(spec0, await source.loadLayer(i), at(i));
        const w = n.weights;
        const weights = {
          ...w,
          q: roundLinear(w.q, dt),
          k: roundLinear(w.k, dt),
          v: roundLinear(w.v, dt),
          o: roundLinear(w.o, dt),
        };
        return { ...n, weights, ...bases[i] };
      })();
      cache.set(i, p);
      if (cache.size > 2) cache.delete(cache.keys().next().value!);
    }
    return p;
  };
  return {
    spec,
    source,
    layouts,
    bases: (i) => bases[i],
    loadNarrowLayer,
    loadEmbeddings: () => source.loadEmbeddings(),
    forgetLayers: () => cache.clear(),
  };
}

/** The compressed model as the runtime runs a loaded Rankwise checkpoint: padded layers + key projections. */
export function expandedSource(cm: CompressedModel): WeightSource {
  const keys = cm.layouts.map((layout, i) => keyProjection(cm.spec, layout, cm.bases(i)));
  return {
    spec: cm.spec,
    loadLayer: async (i) => expandLayer(cm.spec, await cm.loadNarrowLayer(i)).weights,
    loadEmbeddings: () => cm.loadEmbeddings(),
    compression: (i) => keys[i],
  };
}
