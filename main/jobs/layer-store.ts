/**
 * The job cache's unit: one layer's finished work (its fit, its error-rank profile, the point chosen for
 * it when the job chose per layer), as a safetensors file. A resumed or re-run job loads finished layers
 * from here instead of fitting them again, and a finished job re-allocates and exports from here.
 *
 * A fit is stored by its per-rank factors: keys at each rank r (they depend on r alone) and values at each
 * rank r, for each of the fits a mixture picks between, plus the picks. That is exact for every method.
 *
 * Each file carries a sha256 of what it stores (the metadata and every tensor's name, shape and bytes) in
 * its `__metadata__`, checked on every read: a truncated, emptied or bit-flipped layer is never used. The
 * job fits such a layer again and replaces the file (loadStoredLayer); an export names it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';

import { badInput, RankwiseError } from '../core/errors.ts';
import type { ProfilePoint } from '../core/allocate/index.ts';
import { HOST_IS_LITTLE_ENDIAN, swapBytesInPlace } from '../model/dtype.ts';
import { isMissing } from '../model/fs-errors.ts';
import { float64Bytes, SafetensorsFile, writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import type { LayerFit } from '../methods/types.ts';
import type { FactorPair, KeySpace, LayerCompression } from '../core/kv.ts';
import { tempName } from './temp-files.ts';

const META_KEY = 'rankwise_layer';
const SUM_KEY = 'rankwise_layer_sha256';
/** 2: with the checksum (a version-1 file, without one, is fitted again). */
const VERSION = 2;

export interface StoredLayer {
  layer: number;
  keySpace: KeySpace;
  /** The profile measured (every grid pair when allocating, the fixed pair otherwise). */
  points: ProfilePoint[];
  /** The point picked for this layer inside the layer loop (fixed ranks, EigenAttention's sweep). */
  chosen: ProfilePoint | null;
  fit: LayerFit;
}

interface Meta {
  version: number;
  layer: number;
  keySpace: KeySpace;
  points: ProfilePoint[];
  chosen: ProfilePoint | null;
  d: number;
  ranks: number[];
  variants: number;
  /** "k,v" → variant, for mixtures. */
  picks: Record<string, number>;
  /** Per variant and rank: KV heads stored for keys / values (0: that side is uncompressed). */
  heads: { keys: number; values: number }[][];
  /** thin-rope keys: "variant,rank" → the RoPE planes of the keys at that rank. */
  ropePlanes?: Record<string, number[]>;
}

const name = (variant: number, side: 'k' | 'v', rank: number, head: number, which: 'a' | 'b') =>
  `${variant}.${side}${rank}.${head}.${which}`;

interface StoredTensor {
  name: string;
  dtype: string;
  shape: readonly number[];
  bytes: Uint8Array;
}

/** sha256 of the metadata text and every tensor (by name: its dtype, shape and little-endian bytes). */
function checksum(metaText: string, tensors: StoredTensor[]): string {
  const hash = createHash('sha256');
  hash.update(metaText);
  for (const t of [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    hash.update(`\n${t.name}\n${t.dtype}\n${t.shape.join(',')}\n${t.bytes.byteLength}\n`);
    hash.update(t.bytes);
  }
  return hash.digest('hex');
}

/**
 * Writes through a temporary name of its own, so a killed job never leaves a truncated layer in the cache
 * and two jobs writing the same layer never clash; the file's checksum covers all it stores.
 */
export async function writeStoredLayer(file: string, s: StoredLayer, ranks: readonly number[], d: number) {
  const variants = s.fit.mixture?.fits ?? [s.fit];
  const tensors: (TensorToWrite & StoredTensor)[] = [];
  const heads: Meta['heads'] = [];
  const tensor = (n: string, shape: number[], values: Float64Array) => {
    const bytes = float64Bytes(values);
    tensors.push({ name: n, dtype: 'F64', shape, data: bytes, bytes });
  };
  const put = (v: number, side: 'k' | 'v', r: number, pairs: FactorPair[] | null) => {
    pairs?.forEach((p, g) => {
      tensor(name(v, side, r, g, 'a'), [d, r], p.a);
      tensor(name(v, side, r, g, 'b'), [d, r], p.b);
    });
    return pairs?.length ?? 0;
  };
  const stored = ranks.filter((r) => r < d);
  const ropePlanes: Record<string, number[]> = {};
  variants.forEach((fit, v) => {
    heads.push(
      stored.map((r) => {
        const keyed = fit.at(r, d);
        if (keyed.ropePlanes) ropePlanes[`${v},${r}`] = keyed.ropePlanes;
        return { keys: put(v, 'k', r, keyed.keys), values: put(v, 'v', r, fit.at(d, r).values) };
      }),
    );
  });
  const picks: Record<string, number> = {};
  if (s.fit.mixture)
    for (const k of ranks) for (const v of ranks) picks[`${k},${v}`] = s.fit.mixture.pick(k, v);
  const meta: Meta = {
    version: VERSION,
    layer: s.layer,
    keySpace: s.keySpace,
    points: s.points,
    chosen: s.chosen,
    d,
    ranks: stored,
    variants: variants.length,
    picks,
    heads,
    ...(Object.keys(ropePlanes).length > 0 ? { ropePlanes } : {}),
  };
  const metaText = JSON.stringify(meta);
  const tmp = tempName(file);
  try {
    await writeSafetensors(tmp, tensors, { [META_KEY]: metaText, [SUM_KEY]: checksum(metaText, tensors) });
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Reads a cached layer and checks it against its checksum. Anything wrong with the file (truncated,
 * empty, flipped bytes, another version, not a layer at all) is a bad-input error naming it.
 */
export async function readStoredLayer(file: string): Promise<StoredLayer> {
  try {
    return await readChecked(file);
  } catch (e) {
    if (e instanceof RankwiseError) throw e;
    // a checksummed file that still does not hold together (we never write such a file)
    throw badInput(`is not a usable job-cache layer (${e instanceof Error ? e.message : String(e)})`, file);
  }
}

/**
 * The job cache's read: the layer, or null when there is no file, or when the file is damaged, in which
 * case `onDamaged` hears why (the error names the file) and the caller fits the layer again; saving it
 * then replaces the bad file.
 */
export async function loadStoredLayer(
  file: string,
  layer: number,
  onDamaged: (error: RankwiseError) => void,
): Promise<StoredLayer | null> {
  try {
    await fs.promises.stat(file);
  } catch (e) {
    if (isMissing(e)) return null;
  }
  try {
    const stored = await readStoredLayer(file);
    if (stored.layer !== layer) throw badInput(`holds layer ${stored.layer}, not layer ${layer}`, file);
    return stored;
  } catch (e) {
    onDamaged(e instanceof RankwiseError ? e : badInput(String(e), file));
    return null;
  }
}

async function readChecked(file: string): Promise<StoredLayer> {
  const st = await SafetensorsFile.open(file);
  try {
    const text = st.metadata[META_KEY];
    if (!text) throw badInput('not a Rankwise job-cache layer', file);
    const sum = st.metadata[SUM_KEY];
    if (!sum) throw badInput('a job-cache layer without a checksum (written by an older Rankwise)', file);
    const tensors: StoredTensor[] = [];
    for (const n of st.names()) {
      const info = st.info(n);
      tensors.push({ name: n, dtype: info.dtype, shape: info.shape, bytes: await st.readBytes(n) });
    }
    if (checksum(text, tensors) !== sum) {
      throw badInput('does not match its checksum: the file was damaged after it was written', file);
    }
    const meta = JSON.parse(text) as Meta;
    if (meta.version !== VERSION)
      throw badInput(`job-cache layer version ${meta.version} is not ${VERSION}`, file);
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const read = (key: string): Float64Array => {
      const t = byName.get(key);
      if (!t) throw badInput(`no tensor named "${key}"`, file);
      if (t.dtype !== 'F64') throw badInput(`tensor "${key}" is ${t.dtype}, expected F64`, file);
      // readBytes gives a fresh 8-byte-aligned buffer per tensor
      if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(t.bytes, 8);
      return new Float64Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 8);
    };
    const sides: { keys: Map<number, FactorPair[]>; values: Map<number, FactorPair[]> }[] = [];
    for (let v = 0; v < meta.variants; v++) {
      const keys = new Map<number, FactorPair[]>();
      const values = new Map<number, FactorPair[]>();
      for (let i = 0; i < meta.ranks.length; i++) {
        const r = meta.ranks[i];
        const load = (side: 'k' | 'v', n: number) => {
          const pairs: FactorPair[] = [];
          for (let g = 0; g < n; g++) {
            pairs.push({
              a: read(name(v, side, r, g, 'a')),
              b: read(name(v, side, r, g, 'b')),
              rank: r,
            });
          }
          return pairs;
        };
        const h = meta.heads[v][i];
        if (h.keys > 0) keys.set(r, load('k', h.keys));
        if (h.values > 0) values.set(r, load('v', h.values));
      }
      sides.push({ keys, values });
    }
    const at = (kRank: number, vRank: number): LayerCompression => {
      const v = meta.variants > 1 ? (meta.picks[`${kRank},${vRank}`] ?? 0) : 0;
      const keys = kRank < meta.d ? (sides[v].keys.get(kRank) ?? null) : null;
      const planes = keys ? meta.ropePlanes?.[`${v},${kRank}`] : undefined;
      return {
        keySpace: meta.keySpace,
        kRank,
        vRank,
        keys,
        values: vRank < meta.d ? (sides[v].values.get(vRank) ?? null) : null,
        ...(planes ? { ropePlanes: planes } : {}),
      };
    };
    return {
      layer: meta.layer,
      keySpace: meta.keySpace,
      points: meta.points,
      chosen: meta.chosen,
      fit: { keySpace: meta.keySpace, at },
    };
  } finally {
    await st.close();
  }
}
