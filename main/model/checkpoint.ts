/**
 * A Hugging Face checkpoint folder: one `model.safetensors`, or shards listed by
 * `model.safetensors.index.json`. Presents every tensor by name whichever file holds it; shard headers
 * are read once at open, tensor data only on request.
 */
import fs from 'node:fs';
import path from 'node:path';

import { badInput } from '../core/errors.ts';
import { isMissing, unreadable } from './fs-errors.ts';
import { findDuplicateKey, SafetensorsFile, tensorByteLength, writeSafetensors } from './safetensors.ts';
import type { TensorInfo, TensorToWrite } from './safetensors.ts';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface CheckpointTensorInfo extends TensorInfo {
  /** Path of the file that holds the tensor (inside the checkpoint folder). */
  file: string;
}

export class Checkpoint {
  readonly dir: string;
  /** The safetensors files, in shard order. */
  readonly files: string[];
  readonly sharded: boolean;
  private readonly owner: Map<string, SafetensorsFile>;
  private readonly shards: SafetensorsFile[];
  private readonly sortedNames: string[];

  private constructor(
    dir: string,
    shards: SafetensorsFile[],
    owner: Map<string, SafetensorsFile>,
    sharded: boolean,
  ) {
    this.dir = dir;
    this.shards = shards;
    this.owner = owner;
    this.sharded = sharded;
    this.files = shards.map((s) => s.path);
    this.sortedNames = [...owner.keys()].sort();
  }

  /**
   * Opens the weights in `dir`. Like transformers, a single `model.safetensors` wins over an index when
   * both are present.
   */
  static async open(dir: string): Promise<Checkpoint> {
    const single = path.join(dir, SINGLE_FILE);
    const index = path.join(dir, INDEX_FILE);
    if (await isFile(single)) {
      const f = await SafetensorsFile.open(single);
      return new Checkpoint(dir, [f], new Map(f.names().map((n) => [n, f])), false);
    }
    if (await isFile(index)) return Checkpoint.openSharded(dir, index);
    const pickles = ['pytorch_model.bin', 'pytorch_model.bin.index.json'];
    const hasPickle = (await Promise.all(pickles.map((p) => isFile(path.join(dir, p))))).some(Boolean);
    throw badInput(
      `no weights found: expected ${SINGLE_FILE} or ${INDEX_FILE}` +
        (hasPickle ? ' (PyTorch pickle checkpoints are never loaded; convert them to safetensors)' : ''),
      dir,
    );
  }

  /**
   * The file that lists the tensors, named in errors about which tensors there are: model.safetensors, or
   * the index of a sharded checkpoint.
   */
  get listing(): string {
    return this.sharded ? path.join(this.dir, INDEX_FILE) : (this.files[0] ?? this.dir);
  }

  /** Every tensor name, sorted. */
  names(): string[] {
    return [...this.sortedNames];
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  info(name: string): CheckpointTensorInfo {
    const f = this.fileOf(name);
    return { ...f.info(name), file: f.path };
  }

  /** The `__metadata__` of the first file (shards normally repeat the same map). */
  get metadata(): Record<string, string> {
    return this.shards[0]?.metadata ?? {};
  }

  readFloat32(name: string): Promise<Float32Array> {
    return this.fileOf(name).readFloat32(name);
  }

  readBytes(name: string): Promise<Uint8Array> {
    return this.fileOf(name).readBytes(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }

  private static async openSharded(dir: string, indexPath: string): Promise<Checkpoint> {
    const weightMap = await readIndex(indexPath);
    const shardNames = [...new Set(Object.values(weightMap))].sort();
    for (const s of shardNames) {
      if (!(await isFile(path.join(dir, s)))) {
        throw badInput(`shard "${s}" listed in the index does not exist`, indexPath);
      }
    }
    const opened = new Map<string, SafetensorsFile>();
    try {
      for (const s of shardNames) opened.set(s, await SafetensorsFile.open(path.join(dir, s)));
      const owner = new Map<string, SafetensorsFile>();
      for (const [tensor, shard] of Object.entries(weightMap)) {
        const f = opened.get(shard)!;
        if (!f.has(tensor)) {
          throw badInput(`index maps tensor "${tensor}" to "${shard}", which does not contain it`, indexPath);
        }
        owner.set(tensor, f);
      }
      return new Checkpoint(dir, [...opened.values()], owner, true);
    } catch (e) {
      await Promise.all([...opened.values()].map((f) => f.close()));
      throw e;
    }
  }

  private fileOf(name: string): SafetensorsFile {
    const f = this.owner.get(name);
    if (!f) throw badInput(`checkpoint has no tensor "${name}"`, this.listing);
    return f;
  }
}

/** True when `dir` holds a single-file or an indexed checkpoint (says nothing about validity). */
export async function hasWeights(dir: string): Promise<boolean> {
  return (await isFile(path.join(dir, SINGLE_FILE))) || (await isFile(path.join(dir, INDEX_FILE)));
}

/**
 * A folder holding both a stale single file and fresh shards (or the reverse) would load the wrong
 * weights, since the single file wins at open; clear every weights file we could have written.
 */
async function removeOldWeights(dir: string): Promise<void> {
  const stale = (await fs.promises.readdir(dir)).filter(
    (f) => f === SINGLE_FILE || f === INDEX_FILE || /^model-\d{5}-of-\d{5}\.safetensors$/.test(f),
  );
  await Promise.all(stale.map((f) => fs.promises.rm(path.join(dir, f), { force: true })));
}

/** Whether `p` is a file; absent is false, but a path that cannot be checked (EACCES, ELOOP) is an error. */
async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isFile();
  } catch (e) {
    if (isMissing(e)) return false;
    throw unreadable(e, p);
  }
}

/** Parses and validates the index: `{metadata?: object, weight_map: {tensor: shard file name}}`. */
async function readIndex(indexPath: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await fs.promises.readFile(indexPath, 'utf8');
  } catch (e) {
    throw unreadable(e, indexPath);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw badInput(`index is not valid JSON (${(e as Error).message})`, indexPath);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw badInput('index must be a JSON object', indexPath);
  }
  const { weight_map: weightMap, metadata } = json as Record<string, unknown>;
  if (
    metadata !== undefined &&
    (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
  ) {
    throw badInput('index "metadata" must be an object', indexPath);
  }
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw badInput('index has no "weight_map" object', indexPath);
  }
  const dup = findDuplicateKey(text);
  if (dup !== null) throw badInput(`index lists the key "${dup}" more than once`, indexPath);
  const entries = Object.entries(weightMap);
  if (entries.length === 0) throw badInput('index "weight_map" is empty', indexPath);
  for (const [tensor, shard] of entries) {
    if (typeof shard !== 'string' || !shard.endsWith('.safetensors')) {
      throw badInput(`weight_map entry for "${tensor}" must be a .safetensors file name`, indexPath);
    }
    // the index is untrusted: shards must sit beside it, never elsewhere on disk
    if (shard !== path.basename(shard) || shard.includes('\\') || shard.startsWith('.')) {
      throw badInput(`weight_map entry for "${tensor}" is not a plain file name: "${shard}"`, indexPath);
    }
  }
  return weightMap as Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------
// Writer

export interface WriteCheckpointOptions {
  /** Start a new shard before a file would exceed this many bytes of tensor data. Unset: one file. */
  maxShardBytes?: number;
  /** Merged over `{format: 'pt'}` in every file's `__metadata__`. */
  metadata?: Record<string, string>;
}

/**
 * Writes `tensors` into `dir` (created if needed) as `model.safetensors`, or, when they do not fit in
 * `maxShardBytes`, as `model-0000i-of-0000N.safetensors` shards plus the index. Tensors are assigned to
 * shards greedily in the given order; a tensor larger than the limit gets a shard of its own.
 * Returns the paths written.
 */
export async function writeCheckpoint(
  dir: string,
  tensors: readonly TensorToWrite[],
  options: WriteCheckpointOptions = {},
): Promise<string[]> {
  await fs.promises.mkdir(dir, { recursive: true });
  await removeOldWeights(dir);
  const max = options.maxShardBytes ?? Infinity;
  if (!(max > 0)) throw badInput(`maxShardBytes must be positive, got ${max}`, dir);
  const groups: TensorToWrite[][] = [[]];
  let current = 0;
  let total = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw badInput(`tensor "${t.name}" given twice`, dir);
    seen.add(t.name);
    const size = tensorByteLength(t, dir);
    total += size;
    if (current + size > max && groups[groups.length - 1].length > 0) {
      groups.push([]);
      current = 0;
    }
    groups[groups.length - 1].push(t);
    current += size;
  }
  if (groups.length === 1) {
    const file = path.join(dir, SINGLE_FILE);
    await writeSafetensors(file, groups[0], options.metadata);
    return [file];
  }
  const n = groups.length;
  const pad = (i: number) => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  const written: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    await writeSafetensors(path.join(dir, name), groups[i], options.metadata);
    for (const t of groups[i]) weightMap[t.name] = name;
    written.push(path.join(dir, name));
  }
  const sortedMap = Object.fromEntries(
    Object.keys(weightMap)
      .sort()
      .map((k) => [k, weightMap[k]]),
  );
  const indexPath = path.join(dir, INDEX_FILE);
  const index = { metadata: { total_size: total }, weight_map: sortedMap };
  await fs.promises.writeFile(indexPath, JSON.stringify(index, null, 2) + '\n');
  written.push(indexPath);
  return written;
}
