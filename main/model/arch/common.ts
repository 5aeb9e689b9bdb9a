/**
 * Helpers every architecture adapter shares: typed access to config.json fields with errors that name
 * the field, and tensor loading with shape checks that name the tensor.
 */
import { badInput, RankwiseError } from '../../api/errors.ts';
import type { Checkpoint } from '../checkpoint.ts';
import type { Linear, ModelSpec } from '../types.ts';

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
      throw badInput(`config field "${field}" must be a number, found ${JSON.stringify(v)}`, this.file);
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
      throw badInput(
        `config field "${field}" must be a positive integer, found ${JSON.stringify(v)}`,
        this.file,
      );
    }
    return v;
  }
}

/** A tensor an adapter requires, with the shape the spec implies. */
export interface ExpectedTensor {
  name: string;
  shape: number[];
}

/** Throws a bad-input error unless `name` exists with exactly `shape`. */
export function checkTensor(ckpt: Checkpoint, name: string, shape: readonly number[]): void {
  if (!ckpt.has(name)) throw badInput(`missing tensor "${name}"`, ckpt.dir);
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
  return ckpt.readFloat32(name);
}

/** Loads `{prefix}.weight` stored [out, in] (nn.Linear) and, when asked, `{prefix}.bias`. */
export async function loadLinear(
  ckpt: Checkpoint,
  prefix: string,
  out: number,
  inn: number,
  bias: boolean,
): Promise<Linear> {
  const [weight, b] = await Promise.all([
    loadTensor(ckpt, `${prefix}.weight`, [out, inn]),
    bias ? loadTensor(ckpt, `${prefix}.bias`, [out]) : undefined,
  ]);
  return b ? { weight, bias: b, out, in: inn } : { weight, out, in: inn };
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

/** A bias the config says does not exist would be silently dropped, giving wrong outputs: refuse it. */
export function rejectUnexpected(ckpt: Checkpoint, names: readonly string[], why: string): void {
  for (const n of names) {
    if (ckpt.has(n)) throw badInput(`checkpoint has tensor "${n}" but ${why}`, ckpt.dir);
  }
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

export function requireBias(l: Linear, name: string): Float32Array {
  if (!l.bias) throw new RankwiseError('internal', `${name} has no bias to write`);
  return l.bias;
}
