/**
 * Where an export's ONNX decoder lives, and in what precision. Optimum and transformers.js look for
 * `onnx/model.onnx` (with its external data beside it), so that is where exports write it; folders exported
 * before that layout keep theirs at the root and are still read.
 */
import fs from 'node:fs';
import path from 'node:path';

import type { OnnxDtype } from '../contract/api.ts';
import type { DType } from '../contract/model.ts';
import { FLOAT32_PRECISION, type KvDecoderPrecision } from '../runtime/graphs/kv-decoder.ts';

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

/**
 * The decoder's element types for a checkpoint of `dtype` (ARCHITECTURE.md §7). `auto` keeps a 16-bit
 * checkpoint in 16 bits, so the exported cache costs what the original model's does per element: a float16
 * cache for F16 and for BF16 too, since onnxruntime-node can neither take nor return a bfloat16 tensor
 * (and its CPU kernels have no bfloat16 arithmetic). BF16 weights stay bfloat16 in the file, bit for bit
 * the checkpoint's; they are only ever Cast inside the graph, which every onnxruntime from 1.21 does.
 */
export function onnxPrecision(dtype: DType, setting: OnnxDtype = 'auto'): KvDecoderPrecision {
  if (setting === 'float32' || (setting === 'auto' && dtype === 'F32')) return FLOAT32_PRECISION;
  return { cache: 'float16', weights: dtype === 'BF16' ? 'bfloat16' : 'float16' };
}

/** Bytes of one stored weight element. */
export function onnxWeightBytes(p: KvDecoderPrecision): number {
  return p.weights === 'float32' ? 4 : 2;
}

/** Bytes of one cached element. */
export function onnxCacheBytes(p: KvDecoderPrecision): number {
  return p.cache === 'float32' ? 4 : 2;
}
