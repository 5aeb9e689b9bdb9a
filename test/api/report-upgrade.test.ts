import { describe, expect, it } from 'vitest';

import {
  upgradeCompressReport,
  upgradeJobResult,
  upgradeReportData,
} from '../../main/contract/report-upgrade.ts';
import { REPORT_FORMAT, REPORT_VERSION } from '../../main/contract/report.ts';

/** A compress report as version 1 wrote it (main/jobs/compress.ts before the contract owned it). */
const V1 = {
  model: '/m',
  method: 'stief',
  key_space: 'auto',
  window: 64,
  calib_windows: 8,
  heldout_windows: 2,
  eval_windows: 4,
  device: 'cpu',
  perplexity: { original: 7.2, compressed: 7.9 },
  kv_bytes_per_token: { original: 1280, compressed: 640 },
  kv_fraction: 0.5,
  layers: [{ layer: 0, k_rank: 4, v_rank: 2, key_space: 'post-rope', error: 0.1 }],
  profile: [[{ k_rank: 8, v_rank: 8, error: 0 }]],
  allocation: { kind: 'kv-fraction', target: 0.5, feasible: true, weighted_error: 0.3 },
  training: { steps: 10, seconds: 2, seconds_per_layer_step: 0.2 },
  seconds: { load: 0.1, eval_extra: 1 },
};

const V2 = {
  model: '/m',
  method: 'stief',
  keySpace: 'auto',
  window: 64,
  calibWindows: 8,
  heldoutWindows: 2,
  evalWindows: 4,
  device: 'cpu',
  perplexity: { original: 7.2, compressed: 7.9 },
  kvBytesPerToken: { original: 1280, compressed: 640 },
  kvFraction: 0.5,
  layers: [{ layer: 0, kRank: 4, vRank: 2, keySpace: 'post-rope', error: 0.1 }],
  profile: [[{ kRank: 8, vRank: 8, error: 0 }]],
  allocation: { kind: 'kv-fraction', target: 0.5, feasible: true, weightedError: 0.3 },
  training: { steps: 10, seconds: 2, secondsPerLayerStep: 0.2 },
  // stage names are data, not field names: kept as written
  seconds: { load: 0.1, eval_extra: 1 },
};

/** What version 3 adds to an older export's compress section: the job's allocation, as it was. */
const JOB_ALLOCATION = {
  layers: V2.layers,
  kvBytesPerToken: V2.kvBytesPerToken,
  kvFraction: V2.kvFraction,
  perplexity: V2.perplexity,
};

describe('reading reports written before version 2', () => {
  it('a version 1 compress report comes back in today’s casing, every field', () => {
    expect(upgradeCompressReport(V1)).toEqual(V2);
  });

  it('a current report is returned as it is', () => {
    const current = { ...V2, seconds: { load: 1 } };
    expect(upgradeCompressReport(current)).toBe(current);
    expect(upgradeJobResult(current)).toBe(current);
  });

  it('an export report of version 1 gets the current version and an upgraded compress section', () => {
    const v1 = { format: REPORT_FORMAT, version: 1, compress: V1, memory: { weightsBytes: 1 } };
    const compress = { ...V2, jobAllocation: JOB_ALLOCATION };
    expect(upgradeReportData(v1)).toEqual({ ...v1, version: REPORT_VERSION, compress });
    expect(upgradeJobResult(v1)).toEqual({ ...v1, version: REPORT_VERSION, compress });
  });

  it('a job result is told apart by its shape', () => {
    expect(upgradeJobResult(V1)).toEqual(V2);
    const other = { text: 'a try-it result' };
    expect(upgradeJobResult(other)).toBe(other);
  });
});

describe('reading export reports written before version 3', () => {
  it('keeps the job’s allocation under jobAllocation and records no edits (none were recorded)', () => {
    const v2 = { format: REPORT_FORMAT, version: 2, compress: V2, memory: { weightsBytes: 1 } };
    const up = upgradeReportData(v2);
    expect(REPORT_VERSION).toBe(3);
    expect(up).toEqual({ ...v2, version: 3, compress: { ...V2, jobAllocation: JOB_ALLOCATION } });
    expect(up.compress.edits).toBeUndefined();
  });

  it('takes the job’s own perplexity from the evaluation where the headline is the files’', () => {
    const files = { ...V2, perplexity: { original: 7.2, compressed: 8.1 } };
    const v2 = {
      format: REPORT_FORMAT,
      version: 2,
      compress: files,
      export: { evaluation: { windows: 4, window: 64, perplexity: 8.1, inMemory: 7.9 } },
    };
    const up = upgradeReportData(v2);
    expect(up.compress.perplexity).toEqual({ original: 7.2, compressed: 8.1 });
    expect(up.compress.jobAllocation!.perplexity).toEqual({ original: 7.2, compressed: 7.9 });
  });

  it('a version 3 report is returned as it is', () => {
    const v3 = { format: REPORT_FORMAT, version: 3, compress: { ...V2, jobAllocation: JOB_ALLOCATION } };
    expect(upgradeReportData(v3)).toBe(v3);
  });
});
