/**
 * Issue 14, item 1: an export with a layer set by hand must be described as exported. A real compress job
 * on stories260K, exported with layer 0 at 8/8 (full rank), then report.json, the HTML report and
 * config.json are read back and compared, and the exported folder is evaluated the way `rankwise eval`
 * does it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createEngineApi } from '../../main/api/engine-api.ts';
import { evaluate } from '../../main/cli/commands/eval.ts';
import type { CompressReport, ReportData } from '../../main/contract/index.ts';
import { REPORT_HTML, REPORT_JSON } from '../../main/export/export.ts';
import { nonCamelKeys } from '../helpers/json-keys.ts';
import { settle } from '../helpers/jobs.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
const api = createEngineApi({ dir: path.join(tmp.dir, 'engine') });
const out = path.join(tmp.dir, 'export');
const WINDOW = 64;
const FULL = 8; // stories260K's head dimension

let job: CompressReport;
let report: ReportData;
let html: string;
let written: { k_rank: number; v_rank: number; key_space: string }[];

beforeAll(async () => {
  const started = await api.startJob({
    model: STORIES_DIR,
    calib: { path: TINYSTORIES_TEXT },
    eval: { path: TINYSTORIES_TEXT },
    method: 'kqsvd',
    kvFraction: 0.3,
    keySpace: 'pre-rope',
    window: WINDOW,
    calibWindows: 4,
    evalWindows: 2,
  });
  expect((await settle(api, started.id)).at(-1)).toMatchObject({ state: 'done' });
  job = await api.getResult(started.id);
  const exp = await api.exportJob({
    jobId: started.id,
    out,
    ranks: [{ layer: 0, kRank: FULL, vRank: FULL }],
  });
  expect((await settle(api, exp.id)).at(-1)).toMatchObject({ state: 'done' });
  report = JSON.parse(fs.readFileSync(path.join(out, REPORT_JSON), 'utf8')) as ReportData;
  html = fs.readFileSync(path.join(out, REPORT_HTML), 'utf8');
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  written = config.kv_compression.layers;
});

afterAll(async () => {
  await api.close();
  tmp.cleanup();
});

/** Per layer, the K and V ranks of the allocation chart's bars. */
function chartRanks(page: string): [number, number][] {
  const svg = /<svg id="allocation-chart"[\s\S]*?<\/svg>/.exec(page)![0];
  return [...svg.matchAll(/<g class="layer" data-layer="(\d+)"[^>]*>([\s\S]*?)<\/g>/g)].map(([, , inner]) => [
    Number(/<rect class="bar k" data-rank="(\d+)"/.exec(inner)![1]),
    Number(/<rect class="bar v" data-rank="(\d+)"/.exec(inner)![1]),
  ]);
}

/** The per-layer table's rows: layer, key space, k_rank, v_rank, error text. */
function tableRows(page: string): string[][] {
  const table = /<table id="layers-table">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(page)![1];
  return [...table.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map(([, row]) =>
    [...row.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((m) => m[1]),
  );
}

describe('a report of an export with a layer set by hand', () => {
  it('the job did not allocate 8/8 to layer 0, so the export differs from it', () => {
    expect([job.layers[0].kRank, job.layers[0].vRank]).not.toEqual([FULL, FULL]);
    expect(written[0]).toMatchObject({ k_rank: FULL, v_rank: FULL });
  });

  it('report.json has the ranks and key spaces config.json has, and keeps the job’s allocation', () => {
    expect(report.compress.layers.map((l) => [l.kRank, l.vRank, l.keySpace])).toEqual(
      written.map((l) => [l.k_rank, l.v_rank, l.key_space]),
    );
    expect(report.compress.jobAllocation!.layers).toEqual(job.layers);
    expect(report.compress.jobAllocation!.kvBytesPerToken).toEqual(job.kvBytesPerToken);
    expect(report.compress.kvBytesPerToken).toEqual(report.memory.kvBytesPerToken);
    expect(report.compress.kvFraction).toBeGreaterThan(job.kvFraction);
  });

  it('each layer’s error is the job’s measurement at the exported ranks', () => {
    const point = job.profile![0].find((p) => p.kRank === FULL && p.vRank === FULL)!;
    expect(report.compress.layers[0].error).toBe(point.error);
    for (const l of report.compress.layers.slice(1)) expect(l.error).toBe(job.layers[l.layer].error);
  });

  it('the edit note names layer 0, job’s ranks → exported ranks', () => {
    const j = job.layers[0];
    expect(report.compress.edits).toEqual([
      { layer: 0, job: { kRank: j.kRank, vRank: j.vRank }, exported: { kRank: FULL, vRank: FULL } },
    ]);
    const note = /<div class="edits" id="edits">[\s\S]*?<\/div>/.exec(html)![0];
    expect(note).toContain(`<li data-layer="0">Layer 0: K ${j.kRank} → ${FULL}, V ${j.vRank} → ${FULL}</li>`);
    expect(note.match(/<li /g)).toHaveLength(1);
  });

  it('the HTML rank chart and per-layer table show the exported ranks', () => {
    const exported = written.map((l) => [l.k_rank, l.v_rank]);
    expect(chartRanks(html)).toEqual(exported);
    const rows = tableRows(html);
    expect(rows.map((r) => [Number(r[2]), Number(r[3])])).toEqual(exported);
    expect(rows.map((r) => r[1])).toEqual(written.map((l) => l.key_space));
    // the edited row names the job's ranks beside the exported ones
    expect(rows[0][5]).toBe(`${job.layers[0].kRank} / ${job.layers[0].vRank}`);
  });

  it('the headline perplexity is the exported folder’s, as rankwise eval measures it', async () => {
    const ev = await evaluate({
      modelDir: out,
      data: TINYSTORIES_TEXT,
      window: WINDOW,
      maxWindows: report.compress.evalWindows,
      device: 'cpu',
      progress: false,
    });
    expect(ev.windows).toBe(report.compress.evalWindows);
    const headline = report.compress.perplexity.compressed;
    expect(Math.abs(headline / ev.perplexity - 1)).toBeLessThan(1e-6);
    expect(report.export.evaluation!.perplexity).toBe(headline);
    // the job's own figure belongs to the allocation that was not exported, and is kept as the job's
    expect(report.compress.jobAllocation!.perplexity).toEqual(job.perplexity);
    expect(html).toContain(`→ ${headline.toFixed(3)}</div>`);
  });

  it('every key of report.json is camelCase (stage-name records aside)', () => {
    expect(nonCamelKeys(report)).toEqual([]);
  });

  it('getExportReport answers the same report', async () => {
    const jobs = await api.listJobs();
    const exp = jobs.find((j) => j.kind === 'export')!;
    expect(await api.getExportReport(exp.id)).toEqual(report);
  });
});
