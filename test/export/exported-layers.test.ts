import { describe, expect, it } from 'vitest';

import type { CompressReport } from '../../main/contract/report.ts';
import { exportedCompressReport, exportedLayers } from '../../main/export/exported-layers.ts';
import { nonCamelKeys } from '../helpers/json-keys.ts';

const D = 8;
/** A 3-layer job on the grid {2, 4, 8}² with errors that name their point: 0.<layer><k><v>. */
const GRID = [2, 4, 8];
const errorAt = (layer: number, k: number, v: number) => Number(`0.${layer}${k}${v}`);

function job(opts: { profile?: boolean } = {}): CompressReport {
  const layers = [
    { layer: 0, kRank: 2, vRank: 4, keySpace: 'pre-rope' as const, error: errorAt(0, 2, 4) },
    { layer: 1, kRank: 4, vRank: 4, keySpace: 'post-rope' as const, error: errorAt(1, 4, 4) },
    { layer: 2, kRank: 2, vRank: 2, keySpace: 'pre-rope' as const, error: errorAt(2, 2, 2) },
  ];
  return {
    model: '/m',
    method: 'kqsvd',
    keySpace: 'auto',
    window: 64,
    calibWindows: 4,
    heldoutWindows: 1,
    evalWindows: 2,
    device: 'cpu',
    perplexity: { original: 5, compressed: 10 },
    kvBytesPerToken: { original: 3 * 2 * 2 * D * 4, compressed: 18 * 2 * 4 },
    kvFraction: (18 * 2 * 4) / (3 * 2 * 2 * D * 4),
    layers,
    ...(opts.profile === false
      ? {}
      : {
          profile: layers.map((l) =>
            GRID.flatMap((k) => GRID.map((v) => ({ kRank: k, vRank: v, error: errorAt(l.layer, k, v) }))),
          ),
        }),
    seconds: { load: 1, 'eval compressed': 2 },
  };
}

const asJob = (j: CompressReport) =>
  j.layers.map(({ kRank, vRank, keySpace }) => ({ kRank, vRank, keySpace }));

describe('exportedLayers', () => {
  it('the job’s own allocation comes back as it is, with no edits', () => {
    const j = job();
    expect(exportedLayers(j, asJob(j))).toEqual({ layers: j.layers, edits: [] });
  });

  it('an edited layer on the profiled grid takes the profile’s error there, and is listed', () => {
    const j = job();
    const layouts = asJob(j);
    layouts[0] = { ...layouts[0], kRank: D, vRank: D };
    const { layers, edits } = exportedLayers(j, layouts);
    expect(layers[0]).toEqual({
      layer: 0,
      kRank: D,
      vRank: D,
      keySpace: 'pre-rope',
      error: errorAt(0, 8, 8),
    });
    expect(layers.slice(1)).toEqual(j.layers.slice(1));
    expect(edits).toEqual([{ layer: 0, job: { kRank: 2, vRank: 4 }, exported: { kRank: D, vRank: D } }]);
  });

  it('ranks the job never measured get no error: null, never a made-up number', () => {
    const j = job();
    const layouts = asJob(j);
    layouts[1] = { ...layouts[1], kRank: 3 };
    const { layers, edits } = exportedLayers(j, layouts);
    expect(layers[1].error).toBeNull();
    expect(edits.map((e) => e.layer)).toEqual([1]);
  });

  it('a job of fixed ranks has no profile: an edited layer’s error is null, the others the job’s', () => {
    const j = job({ profile: false });
    const layouts = asJob(j);
    layouts[2] = { ...layouts[2], vRank: 4 };
    const { layers } = exportedLayers(j, layouts);
    expect(layers.map((l) => l.error)).toEqual([j.layers[0].error, j.layers[1].error, null]);
  });

  it('a profile of another key space than the written one does not apply', () => {
    const j = job();
    const layouts = asJob(j);
    layouts[1] = { kRank: 2, vRank: 2, keySpace: 'pre-rope' };
    expect(exportedLayers(j, layouts).layers[1].error).toBeNull();
  });
});

describe('exportedCompressReport', () => {
  it('puts the exported ranks, cache and perplexity up front and keeps the job’s in jobAllocation', () => {
    const j = job();
    const layouts = asJob(j);
    layouts[0] = { ...layouts[0], kRank: D, vRank: D };
    const kv = { original: j.kvBytesPerToken.original, compressed: 24 * 2 * 4 };
    const c = exportedCompressReport(j, layouts, { kvBytesPerToken: kv, perplexity: 7.5 });
    expect(c.layers.map((l) => [l.kRank, l.vRank])).toEqual([
      [8, 8],
      [4, 4],
      [2, 2],
    ]);
    expect(c.kvBytesPerToken).toEqual(kv);
    expect(c.kvFraction).toBe(kv.compressed / kv.original);
    expect(c.perplexity).toEqual({ original: 5, compressed: 7.5 });
    expect(c.jobAllocation).toEqual({
      layers: j.layers,
      kvBytesPerToken: j.kvBytesPerToken,
      kvFraction: j.kvFraction,
      perplexity: j.perplexity,
    });
    expect(c.edits).toHaveLength(1);
    // the job's settings, profile and timings pass through untouched
    expect(c.profile).toBe(j.profile);
    expect(c.seconds).toBe(j.seconds);
    expect(nonCamelKeys(c)).toEqual([]);
  });
});

describe('nonCamelKeys', () => {
  it('finds snake_case keys at any depth, skipping records keyed by data', () => {
    const value = {
      okKey: [{ k_rank: 1, nested: { seconds: { eval_extra: 1 } } }],
      seconds: { 'eval compressed': 1, load_x: 2 },
      Upper: 1,
    };
    expect(nonCamelKeys(value)).toEqual(['$.okKey[0].k_rank', '$.Upper']);
  });
});
