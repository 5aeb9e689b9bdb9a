/**
 * Test-only helpers for the model tests: hand-made (possibly malformed) safetensors files, checkpoint
 * rewriting, a Jacobi eigensolver and a naive forward pass, all independent of the code under test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';

import { RankwiseError } from '../../main/api/errors.ts';
import type { ErrorKind } from '../../main/api/errors.ts';
import { Checkpoint, writeCheckpoint } from '../../main/model/checkpoint.ts';
import type { TensorToWrite } from '../../main/model/safetensors.ts';
import type { EmbeddingWeights, LayerWeights, ModelSpec } from '../../main/model/types.ts';

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

/** Eigenvalues of a symmetric n×n matrix (row-major), by cyclic Jacobi rotations; sorted descending. */
export function symmetricEigenvalues(input: Float64Array, n: number): number[] {
  const a = Float64Array.from(input);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Array.from({ length: n }, (_, i) => a[i * n + i]).sort((x, y) => y - x);
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
  return symmetricEigenvalues(g, rows).map((e) => Math.sqrt(Math.max(0, e)));
}

// ---------------------------------------------------------------------------------------------------
// Naive forward pass (float64, one sequence), straight from the architectures' definitions.

function linear(x: Float64Array, l: { weight: Float32Array; bias?: Float32Array; out: number; in: number }) {
  const y = new Float64Array(l.out);
  for (let o = 0; o < l.out; o++) {
    let s = l.bias ? l.bias[o] : 0;
    for (let i = 0; i < l.in; i++) s += l.weight[o * l.in + i] * x[i];
    y[o] = s;
  }
  return y;
}

function norm(x: Float64Array, n: { weight: Float32Array; bias?: Float32Array }, spec: ModelSpec) {
  const D = x.length;
  let mean = 0;
  if (spec.norm.kind === 'layer') mean = x.reduce((a, b) => a + b, 0) / D;
  let v = 0;
  for (let i = 0; i < D; i++) v += (x[i] - mean) ** 2;
  const inv = 1 / Math.sqrt(v / D + spec.norm.eps);
  return x.map((xi, i) => (xi - mean) * inv * n.weight[i] + (n.bias ? n.bias[i] : 0));
}

function rope(x: Float64Array, heads: number, d: number, pos: number, theta: number) {
  const out = Float64Array.from(x);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < d / 2; j++) {
      const ang = pos / theta ** ((2 * j) / d);
      const a = x[h * d + j];
      const b = x[h * d + j + d / 2];
      out[h * d + j] = a * Math.cos(ang) - b * Math.sin(ang);
      out[h * d + j + d / 2] = b * Math.cos(ang) + a * Math.sin(ang);
    }
  }
  return out;
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const silu = (x: number) => x / (1 + Math.exp(-x));

/** Logits for every position, plus the residual-stream RMS after each layer (to watch for blow-up). */
export function naiveForward(
  spec: ModelSpec,
  emb: EmbeddingWeights,
  layers: LayerWeights[],
  ids: number[],
): { logits: Float64Array[]; residualRms: number[] } {
  const D = spec.hiddenSize;
  const { numHeads: H, numKvHeads: Hkv, headDim: d } = spec;
  let xs = ids.map((id, t) => {
    const x = new Float64Array(D);
    for (let i = 0; i < D; i++)
      x[i] = emb.tokens[id * D + i] + (emb.positions ? emb.positions[t * D + i] : 0);
    return x;
  });
  const residualRms: number[] = [];
  for (const L of layers) {
    const h = xs.map((x) => norm(x, L.attnNorm, spec));
    let q = h.map((x) => linear(x, L.q));
    let k = h.map((x) => linear(x, L.k));
    const v = h.map((x) => linear(x, L.v));
    if (spec.rope) {
      q = q.map((x, t) => rope(x, H, d, t, spec.rope!.theta));
      k = k.map((x, t) => rope(x, Hkv, d, t, spec.rope!.theta));
    }
    xs = xs.map((x, t) => {
      const att = new Float64Array(H * d);
      for (let hh = 0; hh < H; hh++) {
        const g = Math.floor(hh / (H / Hkv));
        const scores = Array.from({ length: t + 1 }, (_, s) => {
          let dot = 0;
          for (let j = 0; j < d; j++) dot += q[t][hh * d + j] * k[s][g * d + j];
          return dot / Math.sqrt(d);
        });
        const m = Math.max(...scores);
        const w = scores.map((sc) => Math.exp(sc - m));
        const z = w.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++)
          for (let j = 0; j < d; j++) att[hh * d + j] += (w[s] / z) * v[s][g * d + j];
      }
      const o = linear(att, L.o);
      return x.map((xi, i) => xi + o[i]);
    });
    xs = xs.map((x) => {
      const n = norm(x, L.mlpNorm, spec);
      const up = linear(n, L.up);
      const act = L.gate ? linear(n, L.gate).map((g, i) => silu(g) * up[i]) : up.map(gelu);
      const down = linear(act, L.down);
      return x.map((xi, i) => xi + down[i]);
    });
    let ss = 0;
    for (const x of xs) for (const xi of x) ss += xi * xi;
    residualRms.push(Math.sqrt(ss / (xs.length * D)));
  }
  const logits = xs.map((x) => {
    const n = norm(x, emb.finalNorm, spec);
    return linear(n, { weight: emb.lmHead, out: spec.vocabSize, in: D });
  });
  return { logits, residualRms };
}
