/**
 * Where an export's ONNX decoder lives. Optimum and transformers.js look for `onnx/model.onnx` (with its
 * external data beside it), so that is where exports write it; folders exported before that layout keep
 * theirs at the root and are still read.
 */
import fs from 'node:fs';
import path from 'node:path';

export const ONNX_DIR = 'onnx';
export const ONNX_MODEL = 'model.onnx';
export const ONNX_DATA = 'model.onnx_data';

/** Relative to the export folder: where the decoder is written. */
export const ONNX_FILE = path.posix.join(ONNX_DIR, ONNX_MODEL);
export const ONNX_DATA_FILE = path.posix.join(ONNX_DIR, ONNX_DATA);

/** The decoder of an export folder: `onnx/model.onnx`, else a root `model.onnx`, else null. */
export async function findOnnxModel(dir: string): Promise<string | null> {
  for (const candidate of [path.join(dir, ONNX_DIR, ONNX_MODEL), path.join(dir, ONNX_MODEL)]) {
    const stat = await fs.promises.stat(candidate).catch(() => null);
    if (stat?.isFile()) return candidate;
  }
  return null;
}
