/**
 * Test-only helpers for the model tests: hand-made (possibly malformed) safetensors files, checkpoint
 * rewriting and singular values through the independent Jacobi eigensolver of test/native/reference.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';

import { RankwiseError } from '../../main/core/errors.ts';
import type { ErrorKind } from '../../main/core/errors.ts';
import { Checkpoint, writeCheckpoint } from '../../main/model/checkpoint.ts';
import type { TensorToWrite } from '../../main/model/safetensors.ts';
import { jacobiEigen } from '../native/reference.ts';

/**
 * Writes `8-byte length + header + data` verbatim. `header` may be any string (malformed on purpose);
 * `data` defaults to zeros of `dataBytes` length; `lengthPrefix` overrides the declared header length.
 */
export function writeRawSafetensors(
  file: string,
  header: string | object,
  dataBytes: number | Uint8Array = 0,
  lengthPrefix?: bigint,
): void {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const data = typeof dataBytes === 'number' ? new Uint8Array(dataBytes) : dataBytes;
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(lengthPrefix ?? BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([prefix, h, data]));
}

/** Asserts that `p` rejects with a RankwiseError of `kind` whose message matches `pattern`. */
export async function expectRankwiseError(
  p: Promise<unknown> | (() => unknown),
  kind: ErrorKind,
  pattern: RegExp,
  file?: string,
): Promise<RankwiseError> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected a ${kind} error matching ${pattern}`).toBeInstanceOf(RankwiseError);
  const e = err as RankwiseError;
  expect(e.kind).toBe(kind);
  expect(e.message).toMatch(pattern);
  if (file !== undefined) expect(e.file).toBe(file);
  return e;
}

/**
 * Rewrites the checkpoint in `dir` through `edit`, which receives every tensor (as raw bytes) and
 * returns the list to write. Used to break synthetic models in controlled ways.
 */
export async function rewriteCheckpoint(
  dir: string,
  edit: (tensors: TensorToWrite[]) => TensorToWrite[],
): Promise<void> {
  const ckpt = await Checkpoint.open(dir);
  const tensors: TensorToWrite[] = [];
  for (const name of ckpt.names()) {
    const info = ckpt.info(name);
    tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await ckpt.readBytes(name) });
  }
  await ckpt.close();
  await writeCheckpoint(dir, edit(tensors));
}

export function editConfig(dir: string, edit: (cfg: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(cfg);
  fs.writeFileSync(file, JSON.stringify(cfg));
}

/** Singular values of the rows [r0, r0+rows) of a row-major [*, cols] matrix, via eig(B·Bᵀ). */
export function singularValuesOfRows(w: Float32Array, cols: number, r0: number, rows: number): number[] {
  const g = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += w[(r0 + i) * cols + k] * w[(r0 + j) * cols + k];
      g[i * rows + j] = g[j * rows + i] = s;
    }
  }
  return Array.from(jacobiEigen(g, rows).values)
    .sort((x, y) => y - x)
    .map((e) => Math.sqrt(Math.max(0, e)));
}

// ---------------------------------------------------------------------------------------------------
// Naive forward pass (float64, one sequence), straight from the architectures' definitions.
