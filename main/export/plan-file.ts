/**
 * A compression plan on disk, so `rankwise export PLAN --out DIR` can export a job that ran earlier
 * (`rankwise compress --plan FILE`). It is a safetensors file: the factor pairs as F64 tensors
 * `layers.{i}.{keys|values}.{g}.{a|b}` (d×r each) and everything else as JSON in `__metadata__`, so
 * reading one back goes through the same validated reader as any checkpoint and nothing is unpickled.
 */
import { upgradeCompressReport } from '../contract/report-upgrade.ts';
import { badInput } from '../core/errors.ts';
import type { CompressionPlan } from './plan.ts';
import { float64Bytes, SafetensorsFile, writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import type { FactorPair, KeySpace, LayerCompression } from '../core/kv.ts';
import { ropePlanesProblem } from '../model/kv-layout.ts';

export const PLAN_METADATA_KEY = 'rankwise_plan';
const PLAN_VERSION = 1;

interface LayerEntry {
  keySpace: KeySpace;
  kRank: number;
  vRank: number;
  /** KV heads with key / value pairs; 0 when that side is uncompressed. */
  keyHeads: number;
  valueHeads: number;
  d: number;
  /** thin-rope keys: their RoPE planes (core/kv.ts). */
  ropePlanes?: number[];
}

type PlanMeta = Omit<CompressionPlan, 'layers'> & { version: number; layers: (LayerEntry | null)[] };

const tensorName = (i: number, side: 'keys' | 'values', g: number, which: 'a' | 'b') =>
  `layers.${i}.${side}.${g}.${which}`;

export async function writePlanFile(file: string, plan: CompressionPlan): Promise<void> {
  const tensors: TensorToWrite[] = [];
  const layers = plan.layers.map((c, i): LayerEntry | null => {
    if (!c) return null;
    const sides = [
      ['keys', c.keys],
      ['values', c.values],
    ] as const;
    let d = 0;
    for (const [side, pairs] of sides) {
      pairs?.forEach((p, g) => {
        d = p.a.length / p.rank;
        for (const which of ['a', 'b'] as const) {
          tensors.push({
            name: tensorName(i, side, g, which),
            dtype: 'F64',
            shape: [d, p.rank],
            data: float64Bytes(p[which]),
          });
        }
      });
    }
    return {
      keySpace: c.keySpace,
      kRank: c.kRank,
      vRank: c.vRank,
      keyHeads: c.keys?.length ?? 0,
      valueHeads: c.values?.length ?? 0,
      d,
      ...(c.ropePlanes ? { ropePlanes: c.ropePlanes } : {}),
    };
  });
  const { layers: _omit, ...rest } = plan;
  const meta: PlanMeta = { ...rest, version: PLAN_VERSION, layers };
  await writeSafetensors(file, tensors, { [PLAN_METADATA_KEY]: JSON.stringify(meta) });
}

export async function readPlanFile(file: string): Promise<CompressionPlan> {
  const st = await SafetensorsFile.open(file);
  try {
    const text = st.metadata[PLAN_METADATA_KEY];
    if (text === undefined) throw badInput(`not a Rankwise plan: no "${PLAN_METADATA_KEY}" metadata`, file);
    let meta: PlanMeta;
    try {
      meta = JSON.parse(text) as PlanMeta;
    } catch (e) {
      throw badInput(`plan metadata is not valid JSON (${(e as Error).message})`, file);
    }
    if (meta.version !== PLAN_VERSION || !Array.isArray(meta.layers) || typeof meta.modelDir !== 'string') {
      throw badInput(`unsupported or damaged plan (version ${JSON.stringify(meta.version)})`, file);
    }
    const readPair = async (
      i: number,
      side: 'keys' | 'values',
      g: number,
      rank: number,
    ): Promise<FactorPair> => {
      const read = async (which: 'a' | 'b') => {
        const name = tensorName(i, side, g, which);
        if (!st.names().includes(name)) throw badInput(`plan lacks tensor "${name}"`, file);
        return st.readFloat64(name);
      };
      return { a: await read('a'), b: await read('b'), rank };
    };
    const layers: (LayerCompression | null)[] = [];
    for (let i = 0; i < meta.layers.length; i++) {
      const e = meta.layers[i];
      if (!e) {
        layers.push(null);
        continue;
      }
      const pairs = async (side: 'keys' | 'values', heads: number, rank: number) =>
        heads === 0 ? null : Promise.all(Array.from({ length: heads }, (_, g) => readPair(i, side, g, rank)));
      layers.push({
        keySpace: e.keySpace,
        kRank: e.kRank,
        vRank: e.vRank,
        keys: await pairs('keys', e.keyHeads, e.kRank),
        values: await pairs('values', e.valueHeads, e.vRank),
        ...(e.keySpace === 'thin-rope' && e.keyHeads > 0 ? { ropePlanes: thinPlanes(e, i, file) } : {}),
      });
    }
    const { version: _v, layers: _l, ...rest } = meta;
    return { ...rest, report: upgradeCompressReport(rest.report), layers };
  } finally {
    await st.close();
  }
}

/** A thin-rope layer's planes, checked as a checkpoint's are: a damaged plan must not load. */
function thinPlanes(e: LayerEntry, i: number, file: string): number[] {
  const problem = ropePlanesProblem(e.ropePlanes, e.kRank, e.d);
  if (problem) throw badInput(`plan layer ${i}: "ropePlanes" ${problem}`, file);
  return [...e.ropePlanes!];
}
