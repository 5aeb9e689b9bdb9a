/**
 * The one entry point the rest of the engine uses to open a model folder: spec + lazy, per-layer weight
 * loading. Everything that can be checked from headers (config, tensor names, shapes, dtype) is checked
 * here, so a bad checkpoint fails at open rather than halfway through a job.
 */
import fs from 'node:fs';
import path from 'node:path';

import { badInput } from '../api/errors.ts';
import { Checkpoint } from './checkpoint.ts';
import { CONFIG_FILE, resolveModelSpec } from './config.ts';
import type { ArchAdapter } from './arch/registry.ts';
import type { EmbeddingWeights, LayerWeights, ModelSpec } from './types.ts';

export interface ModelHandle {
  readonly dir: string;
  readonly spec: ModelSpec;
  readonly checkpoint: Checkpoint;
  readonly adapter: ArchAdapter;
  /** Layer `i`'s weights, normalised (linears [out, in], float32). Reads only that layer's tensors. */
  loadLayer(i: number): Promise<LayerWeights>;
  loadEmbeddings(): Promise<EmbeddingWeights>;
  close(): Promise<void>;
}

export async function openModel(dir: string): Promise<ModelHandle> {
  const abs = path.resolve(dir);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(abs);
  } catch {
    throw badInput('model folder does not exist', abs);
  }
  if (!stat.isDirectory()) throw badInput('expected a model folder, found a file', abs);
  const hasConfig = await fs.promises.stat(path.join(abs, CONFIG_FILE)).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!hasConfig) {
    throw badInput(`not a Hugging Face model folder: no ${CONFIG_FILE}`, abs);
  }

  const checkpoint = await Checkpoint.open(abs);
  try {
    const { spec, adapter } = await resolveModelSpec(abs, checkpoint);
    adapter.checkCheckpoint(checkpoint, spec);
    return {
      dir: abs,
      spec,
      checkpoint,
      adapter,
      loadLayer: (i) => adapter.loadLayer(checkpoint, spec, i),
      loadEmbeddings: () => adapter.loadEmbeddings(checkpoint, spec),
      close: () => checkpoint.close(),
    };
  } catch (e) {
    await checkpoint.close();
    throw e;
  }
}
