/**
 * safetensors reader and writer.
 *
 * Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON (`name → {dtype, shape,
 * data_offsets}` plus an optional `__metadata__` string map), then the data section, which the tensors'
 * offsets (relative to its start) must tile exactly. Model files are untrusted input, so the reader
 * validates everything the format promises before any tensor is read, and reads tensors one at a time
 * with positional reads: a checkpoint is never loaded whole.
 */
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

import { badInput, unsupportedModel } from '../core/errors.ts';
import {
  byteLengthOf,
  decodeToFloat32,
  dtypeAlignment,
  encodeFromFloat32,
  FLOAT_READABLE_DTYPES,
  FLOAT_WRITABLE_DTYPES,
  HOST_IS_LITTLE_ENDIAN,
  isSafetensorsDType,
  swapBytesInPlace,
} from './dtype.ts';
import type { SafetensorsDType } from './dtype.ts';
import { fsErrorCode, unreadable } from './fs-errors.ts';

/** The reference implementation's limit; a larger header is a malformed or hostile file. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

export interface TensorInfo {
  dtype: SafetensorsDType;
  shape: number[];
  /** Byte offsets into the data section (the file's `data_offsets`), end exclusive. */
  begin: number;
  end: number;
}

export class SafetensorsFile {
  readonly path: string;
  /** File offset of the data section: 8 + header length. */
  readonly dataStart: number;
  readonly metadata: Record<string, string>;
  private readonly tensors: Map<string, TensorInfo>;
  private fh: FileHandle | null;

  private constructor(
    path: string,
    fh: FileHandle,
    dataStart: number,
    tensors: Map<string, TensorInfo>,
    metadata: Record<string, string>,
  ) {
    this.path = path;
    this.fh = fh;
    this.dataStart = dataStart;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /** Opens `path`, reading and validating only the length prefix and the header. */
  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await fs.promises.open(path, 'r');
    } catch (e) {
      throw openError(e, path);
    }
    try {
      const size = (await fh.stat()).size;
      if (size < 8) {
        throw badInput(
          `truncated safetensors file: ${size} bytes, shorter than the 8-byte length prefix`,
          path,
        );
      }
      const prefix = await readExactly(fh, 0, 8, path);
      const headerLen = new DataView(prefix.buffer).getBigUint64(0, true);
      if (headerLen > BigInt(MAX_HEADER_BYTES)) {
        throw badInput(
          `safetensors header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte cap`,
          path,
        );
      }
      const n = Number(headerLen);
      if (n > size - 8) {
        throw badInput(
          `truncated safetensors file: header claims ${n} bytes but only ${size - 8} follow the length prefix`,
          path,
        );
      }
      const headerBytes = await readExactly(fh, 8, n, path);
      const { tensors, metadata } = parseHeader(headerBytes, size - 8 - n, path);
      return new SafetensorsFile(path, fh, 8 + n, tensors, metadata);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Tensor names in file order (by offset). */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw badInput(`no tensor named "${name}"`, this.path);
    return t;
  }

  /** The tensor's raw little-endian bytes, in a fresh 8-byte-aligned buffer. */
  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    if (!this.fh) throw badInput(`file is closed; cannot read tensor "${name}"`, this.path);
    return readExactly(this.fh, this.dataStart + t.begin, t.end - t.begin, this.path);
  }

  /** The tensor converted to float32 (F32 is returned without a copy). */
  /** An F64 tensor at full precision (plans and the job cache store factors this way). */
  async readFloat64(name: string): Promise<Float64Array> {
    const info = this.info(name);
    if (info.dtype !== 'F64') throw badInput(`tensor "${name}" is ${info.dtype}, expected F64`, this.path);
    const bytes = await this.readBytes(name);
    if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(bytes, 8);
    return new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }

  async readFloat32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    if (!FLOAT_READABLE_DTYPES.includes(t.dtype)) {
      throw unsupportedModel(
        `tensor "${name}" has dtype ${t.dtype}, which Rankwise cannot convert to float32 ` +
          `(readable: ${FLOAT_READABLE_DTYPES.join(', ')})`,
        this.path,
      );
    }
    const out = decodeToFloat32(await this.readBytes(name), t.dtype);
    if (!out)
      throw unsupportedModel(`tensor "${name}": dtype ${t.dtype} is not readable as float32`, this.path);
    return out;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.close();
  }
}

function openError(e: unknown, path: string): Error {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return badInput('file not found', path);
  if (code === 'EISDIR') return badInput('expected a safetensors file but found a folder', path);
  // every other file-system error (EACCES, ELOOP, EIO, …) is the input's: name it and say why
  if (fsErrorCode(e)) return unreadable(e, path);
  return e instanceof Error ? e : new Error(String(e));
}

/** Reads exactly `length` bytes at `position` into a new buffer; a short read means the file shrank. */
async function readExactly(
  fh: FileHandle,
  position: number,
  length: number,
  path: string,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, length - done, position + done);
    if (bytesRead === 0) {
      throw badInput(`truncated safetensors file: expected ${length} bytes at offset ${position}`, path);
    }
    done += bytesRead;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Header validation

function parseHeader(
  bytes: Uint8Array,
  dataSize: number,
  path: string,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw badInput('safetensors header is not valid UTF-8', path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw badInput(`safetensors header is not valid JSON (${(e as Error).message})`, path);
  }
  if (!isPlainObject(json)) throw badInput('safetensors header must be a JSON object', path);
  const dup = findDuplicateKey(text);
  if (dup !== null) throw badInput(`safetensors header has the key "${dup}" more than once`, path);

  let metadata: Record<string, string> = {};
  const entries: [string, TensorInfo][] = [];
  checkNotTruncated(json, dataSize, path);
  for (const [name, value] of Object.entries(json)) {
    if (name === METADATA_KEY) metadata = parseMetadata(value, path);
    else entries.push([name, parseTensorEntry(name, value, path)]);
  }
  checkTiling(entries, dataSize, path);
  return { tensors: new Map(entries), metadata };
}

/**
 * A download cut short leaves a valid header whose tensors reach past the end of the file. Say so in those
 * words, before the per-tensor checks would report the first tensor out of bounds.
 */
function checkNotTruncated(json: Record<string, unknown>, dataSize: number, path: string): void {
  let needed = 0;
  for (const [name, value] of Object.entries(json)) {
    if (name === METADATA_KEY || !isPlainObject(value) || !Array.isArray(value.data_offsets)) continue;
    const end = value.data_offsets[1];
    if (Number.isSafeInteger(end)) needed = Math.max(needed, end as number);
  }
  if (needed > dataSize) {
    throw badInput(
      `truncated safetensors file: its header describes ${needed} bytes of tensor data but only ` +
        `${dataSize} follow the header; download or copy the file again`,
      path,
    );
  }
}

function parseMetadata(value: unknown, path: string): Record<string, string> {
  if (!isPlainObject(value)) throw badInput('__metadata__ must be a JSON object of strings', path);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw badInput(`__metadata__ value for "${k}" must be a string, found ${jsonTypeOf(v)}`, path);
    }
  }
  return value as Record<string, string>;
}

function parseTensorEntry(name: string, value: unknown, path: string): TensorInfo {
  if (!isPlainObject(value)) throw badInput(`tensor "${name}": entry must be an object`, path);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw badInput(`tensor "${name}": missing or non-string dtype`, path);
  if (!isSafetensorsDType(dtype)) throw badInput(`tensor "${name}" has unknown dtype "${dtype}"`, path);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw badInput(`tensor "${name}": shape must be an array of non-negative integers`, path);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    throw badInput(`tensor "${name}": data_offsets must be [begin, end] non-negative integers`, path);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw badInput(`tensor "${name}": data_offsets [${begin}, ${end}] end before begin`, path);
  let numel = 1;
  for (const d of shape as number[]) {
    numel *= d;
    if (!Number.isSafeInteger(numel)) throw badInput(`tensor "${name}": shape is too large`, path);
  }
  const expected = byteLengthOf(dtype, numel);
  if (expected === null) {
    throw badInput(
      `tensor "${name}": ${numel} elements of ${dtype} do not fill a whole number of bytes`,
      path,
    );
  }
  if (expected !== end - begin) {
    throw badInput(
      `tensor "${name}": shape [${shape.join(', ')}] of ${dtype} needs ${expected} bytes ` +
        `but data_offsets span ${end - begin}`,
      path,
    );
  }
  return { dtype, shape: shape as number[], begin, end };
}

/** The tensors must cover the data section exactly once: no holes, no overlaps, nothing left over. */
function checkTiling(entries: [string, TensorInfo][], dataSize: number, path: string): void {
  entries.sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let pos = 0;
  let prev = '';
  for (const [name, t] of entries) {
    if (t.begin < pos) {
      throw badInput(`tensors "${prev}" and "${name}" have overlapping data_offsets (byte ${t.begin})`, path);
    }
    if (t.begin > pos) {
      throw badInput(`hole in the data section: bytes ${pos}..${t.begin} belong to no tensor`, path);
    }
    pos = t.end;
    prev = name;
  }
  if (pos !== dataSize) {
    throw badInput(
      `hole in the data section: bytes ${pos}..${dataSize} at the end belong to no tensor`,
      path,
    );
  }
}

/**
 * JSON.parse keeps the last of duplicate keys silently, so a header could hide a tensor entry. This scans
 * the (already syntax-checked) text once, tracking one key set per open object, and returns the first
 * repeated key. Strings are skipped whole, so braces inside names cannot confuse it.
 */
export function findDuplicateKey(text: string): string | null {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j += 2;
        } else if (d === 0x22) break;
        else j++;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const raw = text.slice(i, j + 1);
        // escapes must be resolved so "\u0061" and "a" count as the same key
        const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] != null;
    } else if (c === 0x3a /* : */) {
      expectKey = false;
    }
  }
  return null;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonTypeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

// ---------------------------------------------------------------------------------------------------
// Writer

export type TensorData = Float32Array | Uint8Array;

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  /**
   * Float32Array (encoded to `dtype`; F32, F16, BF16 or F64) or the raw little-endian bytes. A function is
   * called only when the tensor is written, so a large checkpoint can be produced one tensor at a time.
   */
  data: TensorData | (() => TensorData | Promise<TensorData>);
}

/** Little-endian bytes of a float64 array, to write as an F64 tensor without losing precision. */
export function float64Bytes(a: Float64Array): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (HOST_IS_LITTLE_ENDIAN) return bytes;
  const copy = bytes.slice();
  swapBytesInPlace(copy, 8);
  return copy;
}

/** Elements per encoding chunk, so converting a huge F32 tensor to F16 never doubles its memory. */
const ENCODE_CHUNK = 1 << 20;

/** Bytes the tensor occupies in the file. */
export function tensorByteLength(t: Pick<TensorToWrite, 'name' | 'dtype' | 'shape'>, path?: string): number {
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw badInput(`tensor "${t.name}": shape must be non-negative integers`, path);
  }
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const len = byteLengthOf(t.dtype, numel);
  if (len === null) throw badInput(`tensor "${t.name}": ${numel} × ${t.dtype} is not whole bytes`, path);
  return len;
}

/**
 * The order the writer lays tensors out in: largest element alignment first, then by name. With the
 * header padded to 8 bytes this puts every tensor on a multiple of its own element size.
 */
export function writeOrder<T extends Pick<TensorToWrite, 'name' | 'dtype'>>(tensors: readonly T[]): T[] {
  return [...tensors].sort(
    (a, b) =>
      dtypeAlignment(b.dtype) - dtypeAlignment(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

/**
 * Writes a safetensors file, streaming tensor by tensor. `metadata` is merged over `{format: 'pt'}`.
 * On failure the partial file is removed.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  const meta: Record<string, string> = { format: 'pt', ...metadata };
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string') throw badInput(`metadata value for "${k}" must be a string`, path);
  }
  const seen = new Set<string>();
  for (const t of tensors) {
    if (!t.name || t.name === METADATA_KEY) throw badInput(`invalid tensor name "${t.name}"`, path);
    if (seen.has(t.name)) throw badInput(`tensor "${t.name}" given twice`, path);
    if (!isSafetensorsDType(t.dtype)) throw badInput(`tensor "${t.name}": unknown dtype "${t.dtype}"`, path);
    seen.add(t.name);
  }
  const ordered = writeOrder(tensors);
  const header: Record<string, unknown> = { [METADATA_KEY]: meta };
  let offset = 0;
  const sizes: number[] = [];
  for (const t of ordered) {
    const len = tensorByteLength(t, path);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + len] };
    sizes.push(len);
    offset += len;
  }
  let headerBytes = new TextEncoder().encode(JSON.stringify(header));
  // pad with spaces (valid trailing JSON whitespace) so the data section starts 8-byte aligned
  const padded = Math.ceil(headerBytes.length / 8) * 8;
  if (padded !== headerBytes.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(headerBytes);
    headerBytes = p;
  }
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded), true);

  const fh = await fs.promises.open(path, 'w');
  try {
    await writeAll(fh, prefix);
    await writeAll(fh, headerBytes);
    for (let i = 0; i < ordered.length; i++) {
      await writeTensorData(fh, ordered[i], sizes[i], path);
    }
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(path, { force: true });
    throw e;
  }
}

async function writeTensorData(fh: FileHandle, t: TensorToWrite, size: number, path: string): Promise<void> {
  const data = typeof t.data === 'function' ? await t.data() : t.data;
  if (data instanceof Float32Array) {
    if (!FLOAT_WRITABLE_DTYPES.includes(t.dtype)) {
      throw badInput(`tensor "${t.name}": float data cannot be written as ${t.dtype}; pass raw bytes`, path);
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (data.length !== numel) {
      throw badInput(
        `tensor "${t.name}": shape [${t.shape.join(', ')}] needs ${numel} values, got ${data.length}`,
        path,
      );
    }
    for (let i = 0; i < data.length; i += ENCODE_CHUNK) {
      await writeAll(
        fh,
        encodeFromFloat32(data.subarray(i, Math.min(data.length, i + ENCODE_CHUNK)), t.dtype),
      );
    }
  } else {
    if (data.byteLength !== size) {
      throw badInput(`tensor "${t.name}": needs ${size} bytes of ${t.dtype}, got ${data.byteLength}`, path);
    }
    await writeAll(fh, data);
  }
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}
