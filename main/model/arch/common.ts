/**
 * Helpers every architecture adapter shares: typed access to config.json fields with errors that name
 * the field, and tensor loading with shape checks that name the tensor (the codec, codec.ts, builds on
 * these).
 */
import path from 'node:path';

import { badInput } from '../../core/errors.ts';
import type { Checkpoint } from '../checkpoint.ts';
import type { ModelSpec } from '../types.ts';

/**
 * Upper limits for config.json sizes, far above any real model (the largest have ~130 layers, a hidden
 * size of 16K and vocabularies of 256K). A number past them is a corrupt or hostile config, refused
 * before anything is sized from it. Fields not listed are limited to 2^31 − 1.
 */
export const CONFIG_LIMITS: Readonly<Record<string, number>> = {
  num_hidden_layers: 4096,
  n_layer: 4096,
  hidden_size: 1 << 17,
  n_embd: 1 << 17,
  intermediate_size: 1 << 20,
  n_inner: 1 << 20,
  num_attention_heads: 4096,
  n_head: 4096,
  num_key_value_heads: 4096,
  head_dim: 4096,
  vocab_size: 1 << 24,
  max_position_embeddings: 1 << 28,
  n_positions: 1 << 28,
  n_ctx: 1 << 28,
};
const DEFAULT_INT_LIMIT = 2 ** 31 - 1;

/** Largest normalisation epsilon accepted: real models use 1e-12 … 1e-3. */
export const MAX_NORM_EPS = 1;

/**
 * Read-only view of a parsed config.json. HF configs write `null` for "use the default" (head_dim,
 * n_inner, rope_scaling), so null counts as absent everywhere.
 */
export class ConfigFields {
  readonly raw: Record<string, unknown>;
  readonly file: string;

  constructor(raw: Record<string, unknown>, file: string) {
    this.raw = raw;
    this.file = file;
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  get(field: string): unknown {
    const v = this.raw[field];
    return v === null ? undefined : v;
  }

  /** A required positive integer; the first of `fields` present is used (aliases, e.g. n_embd/hidden_size). */
  int(...fields: string[]): number {
    for (const f of fields) if (this.has(f)) return this.positiveInt(f);
    throw badInput(`config is missing the required field "${fields[0]}"`, this.file);
  }

  optInt(field: string, fallback: number): number {
    return this.has(field) ? this.positiveInt(field) : fallback;
  }

  num(field: string, fallback: number): number {
    if (!this.has(field)) return fallback;
    const v = this.raw[field];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw badInput(`config field "${field}" must be a number, found ${shown(v)}`, this.file);
    }
    return v;
  }

  /** A positive finite number (normalisation epsilons, RoPE θ), at most `max` when given. */
  positiveNum(field: string, fallback: number, max = Number.MAX_VALUE): number {
    const v = this.num(field, fallback);
    if (!(v > 0) || v > max) {
      const range = max === Number.MAX_VALUE ? 'a positive number' : `a positive number of at most ${max}`;
      throw badInput(`config field "${field}" must be ${range}, found ${shown(this.raw[field])}`, this.file);
    }
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    if (!this.has(field)) return fallback;
    const v = this.raw[field];
    if (typeof v !== 'boolean') {
      throw badInput(`config field "${field}" must be true or false, found ${JSON.stringify(v)}`, this.file);
    }
    return v;
  }

  str(field: string, fallback: string): string {
    if (!this.has(field)) return fallback;
    const v = this.raw[field];
    if (typeof v !== 'string') {
      throw badInput(`config field "${field}" must be a string, found ${JSON.stringify(v)}`, this.file);
    }
    return v;
  }

  private positiveInt(field: string): number {
    const v = this.raw[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw badInput(`config field "${field}" must be a positive integer, found ${shown(v)}`, this.file);
    }
    const limit = CONFIG_LIMITS[field] ?? DEFAULT_INT_LIMIT;
    if (v > limit) {
      throw badInput(`config field "${field}" must be at most ${limit}, found ${v}`, this.file);
    }
    return v;
  }
}

/** A config value as the user would recognise it (JSON.stringify would print Infinity, from 1e999, as null). */
function shown(v: unknown): string {
  return typeof v === 'number' ? String(v) : JSON.stringify(v);
}

/** A tensor an adapter requires, with the shape the spec implies. */
export interface ExpectedTensor {
  name: string;
  shape: number[];
}

/** Throws a bad-input error unless `name` exists with exactly `shape`. */
export function checkTensor(ckpt: Checkpoint, name: string, shape: readonly number[]): void {
  if (!ckpt.has(name)) throw badInput(`missing tensor "${name}"`, ckpt.listing);
  const info = ckpt.info(name);
  if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
    throw badInput(
      `tensor "${name}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}]`,
      info.file,
    );
  }
}

export async function loadTensor(
  ckpt: Checkpoint,
  name: string,
  shape: readonly number[],
): Promise<Float32Array> {
  checkTensor(ckpt, name, shape);
  const data = await ckpt.readFloat32(name);
  checkFinite(data, name, ckpt.info(name).file);
  return data;
}

/**
 * A weight that is NaN or ±Infinity poisons every output (a perplexity of NaN, eigensolvers failing far
 * away): refuse it where it is read, naming the tensor, the element and the file. One pass over the
 * float32 values, cheap next to reading them.
 */
export function checkFinite(data: Float32Array, name: string, file: string): void {
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    // x − x is 0 for every finite x, NaN for NaN and ±Infinity
    if (x - x !== 0) {
      throw badInput(
        `tensor "${name}" holds ${String(x)} (element ${i}): the weights are damaged; download or export ` +
          'the checkpoint again',
        file,
      );
    }
  }
}

/**
 * The config's layer count must be the number of layers the checkpoint holds: more would be refused
 * tensor by tensor (or, for a huge count, loop for ever), fewer would silently skip layers. Checked from
 * the tensor names alone, before anything is sized from the count. `layerIndex` returns the layer a
 * tensor name belongs to, or null.
 */
export function checkLayerCount(
  ckpt: Checkpoint,
  spec: ModelSpec,
  field: string,
  layerIndex: (name: string) => number | null,
  example: (i: number) => string,
): void {
  let present = 0;
  for (const name of ckpt.names()) {
    const i = layerIndex(name);
    if (i !== null && i + 1 > present) present = i + 1;
  }
  if (present !== spec.numLayers) {
    const held = present === 0 ? 'no layers' : `${present} layers (${example(0)} … ${example(present - 1)})`;
    throw badInput(
      `${field} is ${spec.numLayers} but the checkpoint holds ${held}; the config does not belong to ` +
        'these weights',
      path.join(ckpt.dir, 'config.json'),
    );
  }
}

/** Row-major [rows, cols] → [cols, rows]. */
export function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[base + c];
  }
  return out;
}

/** Checks every expected tensor's presence and shape from the headers alone (no data is read). */
export function checkAll(ckpt: Checkpoint, expected: readonly ExpectedTensor[]): void {
  for (const t of expected) checkTensor(ckpt, t.name, t.shape);
}

/** Checks that the layer index is in range before any tensor name is built from it. */
export function checkLayerIndex(spec: ModelSpec, layer: number, dir: string): void {
  if (!Number.isInteger(layer) || layer < 0 || layer >= spec.numLayers) {
    throw badInput(`layer ${layer} out of range: the model has layers 0..${spec.numLayers - 1}`, dir);
  }
}

/** A float32 tensor as an adapter lays it out on disk (the writer encodes it to the checkpoint dtype). */
export interface FloatTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}
