import fs from 'node:fs';
import path from 'node:path';
import { Checkpoint } from '../../main/model/checkpoint.ts';
import { writeSafetensors, type TensorToWrite } from '../../main/model/safetensors.ts';

const TORCH_DTYPE = { F16: 'float16', BF16: 'bfloat16' } as const;

/**
 * A copy of the single-file checkpoint `src` at `dst` with every float tensor stored in `dtype`, as a
 * 16-bit release of the same model would be: a real tokenizer and real text behind a 16-bit checkpoint.
 */
export async function copyInDtype(src: string, dst: string, dtype: 'F16' | 'BF16'): Promise<void> {
  fs.mkdirSync(dst, { recursive: true });
  for (const name of fs.readdirSync(src)) {
    const from = path.join(src, name);
    if (name !== 'model.safetensors' && fs.statSync(from).isFile())
      fs.copyFileSync(from, path.join(dst, name));
  }
  const config = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  config.torch_dtype = TORCH_DTYPE[dtype];
  fs.writeFileSync(path.join(dst, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const ckpt = await Checkpoint.open(src);
  const tensors: TensorToWrite[] = [];
  try {
    for (const name of ckpt.names()) {
      const info = ckpt.info(name);
      const float = ['F32', 'F16', 'BF16', 'F64'].includes(info.dtype);
      tensors.push({
        name,
        dtype: (float ? dtype : info.dtype) as TensorToWrite['dtype'],
        shape: info.shape,
        data: float ? await ckpt.readFloat32(name) : await ckpt.readBytes(name),
      });
    }
  } finally {
    await ckpt.close();
  }
  await writeSafetensors(path.join(dst, 'model.safetensors'), tensors);
}
