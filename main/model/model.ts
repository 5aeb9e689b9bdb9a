/**
 * The one entry point the rest of the engine uses to open a model folder: spec + lazy, per-layer weight
 * loading. Everything that can be checked from headers (config, tensor names, shapes, dtype) is checked
 * here, so a bad checkpoint fails at open rather than halfway through a job.
 */
import fs from 'node:fs';
import path from 'node:path';

import { badInput } from '../core/errors.ts';
import { Checkpoint } from './checkpoint.ts';
import { CONFIG_FILE, resolveModelSpec } from './config.ts';
import { checkFinite } from './arch/common.ts';
import { isMissing, unreadable } from './fs-errors.ts';
import type { ArchAdapter } from './arch/registry.ts';
import { expandLayer, keyProjection, narrowLayer, type NarrowLayer } from './fold.ts';
import type { LayerCompression } from '../core/kv.ts';
import { attentionShape } from './kv-layout.ts';
import type { EmbeddingWeights, LayerWeights, ModelSpec } from './types.ts';

export interface ModelHandle {
  readonly dir: string;
  readonly spec: ModelSpec;
  readonly checkpoint: Checkpoint;
  readonly adapter: ArchAdapter;
  /** Layer `i`'s weights, normalised (linears [out, in], float32). Reads only that layer's tensors. */
  loadLayer(i: number): Promise<LayerWeights>;
  loadEmbeddings(): Promise<EmbeddingWeights>;
  /**
   * A Rankwise checkpoint's key projection of layer i, which loadLayer's padded weights need at run
   * time (null for ordinary models and layers whose keys are folded or uncompressed).
   */
  compression(i: number): LayerCompression | null;
  /** Layer i as stored: narrowed projections and bases (an ordinary model's layer is its own narrow form). */
  loadNarrowLayer(i: number): Promise<NarrowLayer>;
  close(): Promise<void>;
}

export async function openModel(dir: string): Promise<ModelHandle> {
  const abs = path.resolve(dir);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(abs);
  } catch (e) {
    if (isMissing(e)) throw badInput('model folder does not exist', abs);
    throw unreadable(e, abs);
  }
  if (!stat.isDirectory()) throw badInput('expected a model folder, found a file', abs);
  const configPath = path.join(abs, CONFIG_FILE);
  const hasConfig = await fs.promises.stat(configPath).then(
    (s) => s.isFile(),
    (e: unknown) => {
      // absent is "not a model folder"; there but unreachable (no search permission, a link loop) says why
      if (isMissing(e)) return false;
      throw unreadable(e, configPath);
    },
  );
  if (!hasConfig) {
    throw badInput(`not a Hugging Face model folder: no ${CONFIG_FILE}`, abs);
  }

  const checkpoint = await Checkpoint.open(abs);
  try {
    const { spec, adapter } = await resolveModelSpec(abs, checkpoint);
    adapter.checkCheckpoint(checkpoint, spec);
    const layouts = spec.kvCompression;
    const bases = layouts ? await readBases(checkpoint, adapter, spec) : [];
    const loadNarrowLayer = async (i: number): Promise<NarrowLayer> => {
      const weights = await adapter.loadLayer(checkpoint, spec, i);
      if (!layouts) return narrowLayer(spec, weights, null);
      return { weights, layout: layouts[i], ...bases[i] };
    };
    // expanding needs only the small bases, so the runtime's synchronous compression() can be answered
    const compressions = layouts ? layouts.map((layout, i) => keyProjection(spec, layout, bases[i])) : [];
    return {
      dir: abs,
      spec,
      checkpoint,
      adapter,
      loadLayer: async (i) =>
        layouts
          ? expandLayer(spec, await loadNarrowLayer(i)).weights
          : adapter.loadLayer(checkpoint, spec, i),
      loadEmbeddings: () => adapter.loadEmbeddings(checkpoint, spec),
      compression: (i) => compressions[i] ?? null,
      loadNarrowLayer,
      close: () => checkpoint.close(),
    };
  } catch (e) {
    await checkpoint.close();
    throw e;
  }
}

type Bases = { kBasis?: Float32Array; qBasis?: Float32Array };

/** Every layer's key bases of a compressed checkpoint (shapes were checked with the rest at open). */
async function readBases(ckpt: Checkpoint, adapter: ArchAdapter, spec: ModelSpec): Promise<Bases[]> {
  const out: Bases[] = [];
  for (let i = 0; i < spec.numLayers; i++) {
    const shape = attentionShape(spec.kvCompression![i], spec.headDim);
    const prefix = adapter.attentionPrefix(ckpt, i);
    const basis = async (name: string) => {
      const data = await ckpt.readFloat32(name);
      checkFinite(data, name, ckpt.info(name).file);
      return data;
    };
    out.push({
      kBasis: shape.kBasis ? await basis(`${prefix}k_basis`) : undefined,
      qBasis: shape.qBasis ? await basis(`${prefix}q_basis`) : undefined,
    });
  }
  return out;
}
