/**
 * config.json → ModelSpec. The architecture adapter interprets the model-specific keys; this module
 * reads the file, settles the dtype (the checkpoint's tensors outrank the config's claim) and the
 * special-token ids.
 */
import fs from 'node:fs';
import path from 'node:path';

import { badInput, unsupportedModel } from '../core/errors.ts';
import { ConfigFields } from './arch/common.ts';
import { adapterFor } from './arch/registry.ts';
import type { ArchAdapter } from './arch/registry.ts';
import { Checkpoint, hasWeights } from './checkpoint.ts';
import { isMissing, unreadable } from './fs-errors.ts';
import { KV_COMPRESSION_KEY, parseKvCompression } from './kv-layout.ts';
import type { DType, ModelSpec } from './types.ts';

export const CONFIG_FILE = 'config.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';

/** torch dtype names as config.json spells them (`torch_dtype`, or `dtype` since transformers 4.56). */
const TORCH_DTYPES: Record<string, DType> = {
  float32: 'F32',
  float: 'F32',
  float16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
};

/** Reads a JSON object file; a missing file or bad JSON is a bad-input error naming it. */
export async function readJsonObject(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    if (isMissing(e)) throw badInput('file not found', file);
    throw unreadable(e, file);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw badInput(`not valid JSON (${(e as Error).message})`, file);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw badInput('expected a JSON object', file);
  }
  return json as Record<string, unknown>;
}

/** Parses a config object into a spec, without looking at any weights. */
export function specFromConfig(
  raw: Record<string, unknown>,
  file: string,
): { spec: ModelSpec; adapter: ArchAdapter } {
  const adapter = adapterFor(raw.model_type, file);
  const cfg = new ConfigFields(raw, file);
  const arch = adapter.parseConfig(cfg, raw.model_type as string);
  if (arch.headDim <= 0 || arch.numKvHeads > arch.numHeads) {
    throw badInput(`inconsistent attention shape: ${arch.numHeads} heads, ${arch.numKvHeads} KV heads`, file);
  }
  const spec: ModelSpec = {
    ...arch,
    dtype: configDtype(cfg),
    bosTokenId: tokenId(raw.bos_token_id),
    eosTokenId: tokenId(raw.eos_token_id),
  };
  if (cfg.has(KV_COMPRESSION_KEY)) {
    spec.kvCompression = parseKvCompression(
      raw[KV_COMPRESSION_KEY],
      { numLayers: spec.numLayers, headDim: spec.headDim, hasRope: spec.rope !== null },
      file,
    );
  }
  return { spec, adapter };
}

/**
 * Reads `dir/config.json` into a ModelSpec. When `checkpoint` is given (or weights exist in `dir`), the
 * dtype is taken from the first layer's weight tensor, whatever the config claims.
 */
export async function readModelSpec(dir: string, checkpoint?: Checkpoint): Promise<ModelSpec> {
  return (await resolveModelSpec(dir, checkpoint)).spec;
}

/** readModelSpec plus the adapter that goes with it (for openModel). */
export async function resolveModelSpec(
  dir: string,
  checkpoint?: Checkpoint,
): Promise<{ spec: ModelSpec; adapter: ArchAdapter }> {
  const file = path.join(dir, CONFIG_FILE);
  const { spec, adapter } = specFromConfig(await readJsonObject(file), file);
  if (spec.bosTokenId === null || spec.eosTokenId === null) await fillFromGenerationConfig(dir, spec);

  let ckpt = checkpoint;
  let opened = false;
  // without weights the config's dtype is all we have (openModel reports missing weights itself)
  if (!ckpt && (await hasWeights(dir))) {
    ckpt = await Checkpoint.open(dir);
    opened = true;
  }
  if (ckpt) {
    try {
      spec.dtype = tensorDtype(ckpt, adapter);
    } finally {
      if (opened) await ckpt.close();
    }
  }
  return { spec, adapter };
}

function configDtype(cfg: ConfigFields): DType {
  const name = cfg.get('torch_dtype') ?? cfg.get('dtype');
  if (typeof name === 'string' && Object.hasOwn(TORCH_DTYPES, name)) return TORCH_DTYPES[name];
  // absent or exotic: provisional; the tensors decide when the weights are opened
  return 'F32';
}

function tensorDtype(ckpt: Checkpoint, adapter: ArchAdapter): DType {
  const probe = adapter.dtypeProbe(ckpt);
  if (!ckpt.has(probe)) throw badInput(`missing tensor "${probe}"`, ckpt.listing);
  const info = ckpt.info(probe);
  if (info.dtype === 'F32' || info.dtype === 'F16' || info.dtype === 'BF16') return info.dtype;
  throw unsupportedModel(
    `layer weights are stored as ${info.dtype} (tensor "${probe}"); Rankwise reads F32, F16 and BF16`,
    info.file,
  );
}

/** bos/eos ids are ints, or (eos) a list whose first entry is the primary one. */
function tokenId(v: unknown): number | null {
  if (Array.isArray(v)) v = v[0];
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

async function fillFromGenerationConfig(dir: string, spec: ModelSpec): Promise<void> {
  const file = path.join(dir, GENERATION_CONFIG_FILE);
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    // an optional file: its absence is no matter, but one that is there and unreadable is reported
    if (isMissing(e)) return;
    throw unreadable(e, file);
  }
  let gen: Record<string, unknown>;
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return;
    gen = json as Record<string, unknown>;
  } catch {
    return; // malformed: the config's own ids (or none) stand, as before
  }
  spec.bosTokenId ??= tokenId(gen.bos_token_id);
  spec.eosTokenId ??= tokenId(gen.eos_token_id);
}
