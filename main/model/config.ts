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
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.ts';
import { isMissing, unreadable } from './fs-errors.ts';
import { attentionShape, KV_COMPRESSION_KEY, parseKvCompression } from './kv-layout.ts';
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

/**
 * Parses a config object into a spec, without looking at any weights. `dtype` overrides the config's
 * (readModelSpec passes the tensors'), since the recipe depends on it.
 */
export function specFromConfig(
  raw: Record<string, unknown>,
  file: string,
  dtype?: DType,
): { spec: ModelSpec; adapter: ArchAdapter } {
  const adapter = adapterFor(raw.model_type, file);
  const cfg = new ConfigFields(raw, file);
  const arch = adapter.parseConfig(cfg, raw.model_type as string);
  if (arch.headDim <= 0 || arch.numKvHeads > arch.numHeads) {
    throw badInput(`inconsistent attention shape: ${arch.numHeads} heads, ${arch.numKvHeads} KV heads`, file);
  }
  const dt = dtype ?? configDtype(cfg);
  const spec: ModelSpec = {
    ...arch,
    // transformers multiplies by torch.tensor(scale, dtype=<the model's dtype>): Gemma's √D is rounded
    // to that dtype first (√3072 = 55.4256 becomes 55.5 in bfloat16)
    block: { ...arch.block, embedScale: roundToDtype(arch.block.embedScale, dt) },
    dtype: dt,
    bosTokenId: tokenId(raw.bos_token_id),
    eosTokenId: tokenId(raw.eos_token_id),
  };
  if (cfg.has(KV_COMPRESSION_KEY)) {
    spec.kvCompression = parseKvCompression(
      raw[KV_COMPRESSION_KEY],
      { numLayers: spec.numLayers, headDim: spec.headDim, hasRope: spec.block.rope !== null },
      file,
    );
    if (spec.block.qkNorm) checkWholeHeads(spec, file);
  }
  return { spec, adapter };
}

/**
 * A per-head q/k norm (Qwen3) normalises whole heads: a compressed layer whose stored q_proj or k_proj is
 * narrowed (pre-RoPE or folded keys) leaves it nothing to apply to. Only post-RoPE keys keep the heads.
 */
function checkWholeHeads(spec: ModelSpec, file: string): void {
  spec.kvCompression!.forEach((layout, i) => {
    const s = attentionShape(layout, spec.headDim);
    if (s.qWidth !== spec.headDim || s.kWidth !== spec.headDim) {
      throw unsupportedModel(
        `kv_compression layer ${i} stores ${layout.keySpace} keys of rank ${layout.kRank}, which the ` +
          `per-head q/k norms of ${spec.modelType} cannot follow (only post-rope keys can)`,
        file,
      );
    }
  });
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
  const raw = await readJsonObject(file);
  const { spec, adapter } = specFromConfig(raw, file);
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
      const dtype = tensorDtype(ckpt, adapter, spec);
      if (dtype !== spec.dtype) {
        spec.dtype = dtype;
        spec.block = specFromConfig(raw, file, dtype).spec.block;
      }
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

/** A value as a tensor of `dtype` holds it (round to nearest, ties to even). */
function roundToDtype(x: number, dtype: DType): number {
  const f = Float32Array.of(x);
  if (dtype === 'F16') return f16ToF32(f32ToF16(f))[0];
  if (dtype === 'BF16') return bf16ToF32(f32ToBf16(f))[0];
  return f[0];
}

function tensorDtype(ckpt: Checkpoint, adapter: ArchAdapter, spec: ModelSpec): DType {
  const probe = adapter.dtypeProbe(ckpt, spec);
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
