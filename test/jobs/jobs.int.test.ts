/**
 * A whole job through RankwiseApi in-process: worker threads, ordered events, cancel at every stage with
 * nothing left behind, resume from the job cache, the pre-flight refusal, and a main thread that stays
 * responsive while a job runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobEvent, JobId, JobSettings } from '../../main/contract/index.ts';
import { createEngineApi } from '../../main/api/engine-api.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { settle } from '../helpers/jobs.ts';

const tmp = tempDir();
let api: ReturnType<typeof createEngineApi>;
beforeAll(() => {
  api = createEngineApi({ dir: path.join(tmp.dir, 'engine') });
});
afterAll(async () => {
  await api.close();
  tmp.cleanup();
});

const settings = (over: Partial<JobSettings> = {}): JobSettings => ({
  model: STORIES_DIR,
  calib: { path: TINYSTORIES_TEXT },
  eval: { path: TINYSTORIES_TEXT },
  method: 'kqsvd',
  kvFraction: 0.5,
  keySpace: 'pre-rope',
  window: 128,
  calibWindows: 6,
  evalWindows: 2,
  ...over,
});

const filesUnder = (dir: string): string[] =>
  fs.existsSync(dir)
    ? (fs.readdirSync(dir, { recursive: true }) as string[]).map((f) => path.join(dir, f))
    : [];

describe('jobs through the API', () => {
  let jobId: JobId;

  it('runs a compress job in a worker: ordered events, live profiles, the result', async () => {
    const job = await api.startJob(settings());
    jobId = job.id;
    // the event loop must stay free while the worker computes
    let lag = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      lag = Math.max(lag, now - last - 10);
      last = now;
    }, 10);
    const events = await settle(api, job.id);
    clearInterval(timer);
    expect(lag).toBeLessThan(50);

    expect(events.at(-1)).toMatchObject({ type: 'state', state: 'done' });
    const seqs = events.map((e) => e.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1);
    // done counts never go back within a stage
    const lastDone = new Map<string, number>();
    for (const e of events) {
      if (e.type !== 'progress') continue;
      expect(e.done).toBeGreaterThanOrEqual(lastDone.get(e.stage) ?? 0);
      lastDone.set(e.stage, e.done);
      expect(e.memoryBytes).toBeGreaterThan(0);
    }
    const profiles = events.filter((e) => e.type === 'profile');
    expect(profiles.map((e) => e.layer)).toEqual([0, 1, 2, 3, 4]);
    for (const p of profiles) expect(p.type === 'profile' && p.points.length).toBe(64);

    const result = await api.getResult(job.id);
    expect(result.layers).toHaveLength(5);
    expect(result.kvFraction).toBeLessThanOrEqual(0.5 + 1e-12);
    const listed = (await api.listJobs()).find((j) => j.id === job.id);
    // the summary carries what recent jobs show, from the report (issue 14)
    expect(listed?.outcome).toEqual({ kvFraction: result.kvFraction, perplexity: result.perplexity });
  });

  it('a job that differs only in its memory target reuses every fitted layer from the cache', async () => {
    const job = await api.startJob(settings({ kvFraction: 0.3 }));
    const events = await settle(api, job.id);
    expect(events.at(-1)).toMatchObject({ state: 'done' });
    const profiles = events.filter((e) => e.type === 'profile');
    expect(profiles).toHaveLength(5);
    for (const e of profiles) expect(e.type === 'profile' && e.cached).toBe(true);
    expect((await api.getResult(job.id)).kvFraction).toBeLessThanOrEqual(0.3 + 1e-12);
  });

  it('re-allocates a finished job instantly, with per-layer overrides', async () => {
    const own = await api.reallocate({ jobId });
    const result = await api.getResult(jobId);
    expect(own.layers.map((l) => [l.kRank, l.vRank])).toEqual(result.layers.map((l) => [l.kRank, l.vRank]));
    const t0 = performance.now();
    const edited = await api.reallocate({ jobId, overrides: [{ layer: 0, kRank: 8, vRank: 8 }] });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(edited.layers[0]).toMatchObject({ kRank: 8, vRank: 8 });
    expect(edited.kvBytesPerToken.compressed).toBeGreaterThan(own.kvBytesPerToken.compressed);
    const tighter = await api.reallocate({ jobId, kvFraction: 0.25 });
    expect(tighter.kvFraction).toBeLessThanOrEqual(0.25 + 1e-12);
  });

  it('exports a finished job with edited ranks; the report comes back', async () => {
    const out = path.join(tmp.dir, 'export-edited');
    const job = await api.exportJob({ jobId, out, ranks: [{ layer: 0, kRank: 8, vRank: 8 }], onnx: false });
    const events = await settle(api, job.id);
    expect(events.at(-1)).toMatchObject({ state: 'done' });
    const report = await api.getExportReport(job.id);
    expect(report.export.verification.passed).toBe(true);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config.kv_compression.layers[0]).toMatchObject({ k_rank: 8, v_rank: 8 });
  });

  it.each(['capture', 'profile'])(
    'cancel during %s: cancelled within a second, no temp file',
    async (stage) => {
      const job = await api.startJob(settings({ calibWindows: 12, seed: stage.length }));
      let asked = 0;
      const events = await settle(api, job.id, (e) => {
        if (e.type === 'progress' && e.stage.startsWith(stage) && !asked) {
          asked = performance.now();
          void api.cancelJob(job.id);
        }
      });
      const end = events.at(-1)!;
      expect(end).toMatchObject({ type: 'state', state: 'cancelled' });
      expect(performance.now() - asked).toBeLessThan(1500);
      const leftovers = filesUnder(path.join(tmp.dir, 'engine')).filter((f) => f.endsWith('.partial'));
      expect(leftovers).toEqual([]);
      await expect(api.getResult(job.id)).rejects.toMatchObject({ kind: 'bad-input' });
    },
  );

  it('cancel during export leaves no partial export and no folder', async () => {
    const out = path.join(tmp.dir, 'export-cancelled');
    const job = await api.exportJob({ jobId, out });
    const events = await settle(api, job.id, (e) => {
      if (e.type === 'progress' && e.stage.startsWith('verify')) void api.cancelJob(job.id);
    });
    expect(events.at(-1)).toMatchObject({ state: 'cancelled' });
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(`${out}.partial`)).toBe(false);
  });

  it('a resumed job skips the layers it finished (StiefAttention training)', async () => {
    const s = settings({
      method: 'stief',
      ranks: { k: 4, v: 4 },
      kvFraction: undefined,
      stief: { steps: 6, trainWindows: 1 },
    });
    const job = await api.startJob(s);
    const first = await settle(api, job.id, (e) => {
      if (e.type === 'profile' && e.layer === 1) void api.cancelJob(job.id);
    });
    expect(first.at(-1)).toMatchObject({ state: 'cancelled' });
    const finished = first.filter((e) => e.type === 'profile').map((e) => e.layer);
    // training progress carries the optimiser step
    const steps = first.filter((e) => e.type === 'progress' && e.stage.startsWith('train'));
    expect(steps.length).toBeGreaterThan(0);
    for (const e of steps) if (e.type === 'progress') expect(e.step).toBe(e.done);
    expect(finished.length).toBeGreaterThanOrEqual(2);

    const resumed = await api.resumeJob(job.id);
    expect(resumed.id).toBe(job.id);
    const second = await settle(api, job.id);
    expect(second.at(-1)).toMatchObject({ state: 'done' });
    const profiles = second.filter((e) => e.type === 'profile');
    for (const e of profiles) {
      if (e.type === 'profile') expect(e.cached).toBe(finished.includes(e.layer));
    }
    // no training for a layer that came from the cache
    const trained = new Set(
      second
        .filter((e) => e.type === 'progress' && e.stage.startsWith('train'))
        .map((e) => (e.type === 'progress' ? e.layer : -1)),
    );
    for (const l of finished) expect(trained.has(l)).toBe(false);
    expect((await api.getResult(job.id)).layers).toHaveLength(5);
  });

  it('runs one job at a time per device: a second job waits in the queue', async () => {
    const order: string[] = [];
    const a = await api.startJob(settings({ ranks: { k: 4, v: 4 }, kvFraction: undefined, seed: 11 }));
    const b = await api.startJob(settings({ ranks: { k: 2, v: 2 }, kvFraction: undefined, seed: 12 }));
    const note = (name: string) => (e: JobEvent) => {
      if (e.type === 'state') order.push(`${name}:${e.state}`);
    };
    await Promise.all([settle(api, a.id, note('a')), settle(api, b.id, note('b'))]);
    // b was queued while a ran, and started only once a was done
    expect(order.indexOf('b:running')).toBeGreaterThan(order.indexOf('a:done'));
    expect(order).toContain('b:queued');
    expect(order.at(-1)).toBe('b:done');
  });

  it('refuses before it starts a job that would not fit in memory', async () => {
    const small = createEngineApi({ dir: path.join(tmp.dir, 'small'), memoryLimitBytes: 64 * 2 ** 20 });
    const estimate = await small.estimate(settings());
    expect(estimate.fits).toBe(false);
    await expect(small.startJob(settings())).rejects.toMatchObject({ kind: 'bad-input' });
    expect(await small.listJobs()).toEqual([]);
    await small.close();
  });
});
