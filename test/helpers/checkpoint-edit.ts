import fs from 'node:fs';
import path from 'node:path';
import { Checkpoint } from '../../main/model/checkpoint.ts';
import { writeSafetensors, type TensorToWrite } from '../../main/model/safetensors.ts';

/**
 * Rewrites a single-file checkpoint with every tensor passed through `edit` (which changes the float32
 * data in place): how tests plant structure into a synthetic model.
 */
export async function rewriteTensors(
  dir: string,
  edit: (name: string, data: Float32Array, shape: readonly number[]) => void,
): Promise<void> {
  const file = path.join(dir, 'model.safetensors');
  const ckpt = await Checkpoint.open(dir);
  const tensors: TensorToWrite[] = [];
  for (const name of ckpt.names()) {
    const info = ckpt.info(name);
    const data = await ckpt.readFloat32(name);
    edit(name, data, info.shape);
    tensors.push({ name, dtype: info.dtype as TensorToWrite['dtype'], shape: info.shape, data });
  }
  await ckpt.close();
  fs.rmSync(file);
  await writeSafetensors(file, tensors);
}
