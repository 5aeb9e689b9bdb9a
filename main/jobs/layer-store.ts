/**
 * The job cache's unit: one layer's finished work (its fit, its error-rank profile, the point chosen for
 * it when the job chose per layer), as a safetensors file. A resumed or re-run job loads finished layers
 * from here instead of fitting them again, and a finished job re-allocates and exports from here.
 *
 * A fit is stored by its per-rank factors: keys at each rank r (they depend on r alone) and values at each
 * rank r, for each of the fits a mixture picks between, plus the picks. That is exact for every method.
 */
import fs from 'node:fs';

import { badInput } from '../api/errors.ts';
import type { ProfilePoint } from '../allocate/index.ts';
import { float64Bytes, SafetensorsFile, writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import type { FactorPair, KeySpace, LayerCompression, LayerFit } from '../methods/types.ts';

const META_KEY = 'rankwise_layer';
const VERSION = 1;

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
}

const name = (variant: number, side: 'k' | 'v', rank: number, head: number, which: 'a' | 'b') =>
  `${variant}.${side}${rank}.${head}.${which}`;

/** Writes through a temporary name, so a killed job never leaves a truncated layer in the cache. */
export async function writeStoredLayer(file: string, s: StoredLayer, ranks: readonly number[], d: number) {
  const variants = s.fit.mixture?.fits ?? [s.fit];
  const tensors: TensorToWrite[] = [];
  const heads: Meta['heads'] = [];
  const put = (v: number, side: 'k' | 'v', r: number, pairs: FactorPair[] | null) => {
    pairs?.forEach((p, g) => {
      tensors.push({ name: name(v, side, r, g, 'a'), dtype: 'F64', shape: [d, r], data: float64Bytes(p.a) });
      tensors.push({ name: name(v, side, r, g, 'b'), dtype: 'F64', shape: [d, r], data: float64Bytes(p.b) });
    });
    return pairs?.length ?? 0;
  };
  const stored = ranks.filter((r) => r < d);
  variants.forEach((fit, v) => {
    heads.push(
      stored.map((r) => ({
        keys: put(v, 'k', r, fit.at(r, d).keys),
        values: put(v, 'v', r, fit.at(d, r).values),
      })),
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
  };
  const tmp = `${file}.partial`;
  try {
    await writeSafetensors(tmp, tensors, { [META_KEY]: JSON.stringify(meta) });
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}

export async function readStoredLayer(file: string): Promise<StoredLayer> {
  const st = await SafetensorsFile.open(file);
  try {
    const text = st.metadata[META_KEY];
    if (!text) throw badInput('not a Rankwise job-cache layer', file);
    const meta = JSON.parse(text) as Meta;
    if (meta.version !== VERSION)
      throw badInput(`job-cache layer version ${meta.version} is not ${VERSION}`, file);
    const read = (key: string) => st.readFloat64(key);
    const sides: { keys: Map<number, FactorPair[]>; values: Map<number, FactorPair[]> }[] = [];
    for (let v = 0; v < meta.variants; v++) {
      const keys = new Map<number, FactorPair[]>();
      const values = new Map<number, FactorPair[]>();
      for (let i = 0; i < meta.ranks.length; i++) {
        const r = meta.ranks[i];
        const load = async (side: 'k' | 'v', n: number) => {
          const pairs: FactorPair[] = [];
          for (let g = 0; g < n; g++) {
            pairs.push({
              a: await read(name(v, side, r, g, 'a')),
              b: await read(name(v, side, r, g, 'b')),
              rank: r,
            });
          }
          return pairs;
        };
        const h = meta.heads[v][i];
        if (h.keys > 0) keys.set(r, await load('k', h.keys));
        if (h.values > 0) values.set(r, await load('v', h.values));
      }
      sides.push({ keys, values });
    }
    const at = (kRank: number, vRank: number): LayerCompression => {
      const v = meta.variants > 1 ? (meta.picks[`${kRank},${vRank}`] ?? 0) : 0;
      return {
        keySpace: meta.keySpace,
        kRank,
        vRank,
        keys: kRank < meta.d ? (sides[v].keys.get(kRank) ?? null) : null,
        values: vRank < meta.d ? (sides[v].values.get(vRank) ?? null) : null,
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
