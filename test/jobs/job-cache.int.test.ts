/**
 * Damaged job files (audit #13, item 4): a cached layer that is truncated, empty or has flipped bytes is
 * caught (its checksum), fitted again and replaced, with a log event naming it; a damaged result.json or
 * plan.json is a bad-input error naming the file; a job whose job.json is damaged stays listed after a
 * restart, as failed and naming the file; job files are written through unique temporary names.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobEvent, JobSettings, RankwiseApi } from '../../main/contract/index.ts';
import { createEngineApi } from '../../main/api/engine-api.ts';
import { JOB_FILE, layerFile, PLAN_META, RESULT_FILE, writeFileAtomic } from '../../main/jobs/job-files.ts';
import { readStoredLayer } from '../../main/jobs/layer-store.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { settle } from '../helpers/jobs.ts';

const tmp = tempDir();
const engineDir = path.join(tmp.dir, 'engine');
let api: ReturnType<typeof createEngineApi>;
beforeAll(() => {
  api = createEngineApi({ dir: engineDir });
});
afterAll(async () => {
  await api.close();
  tmp.cleanup();
});

const settings = (seed: number): JobSettings => ({
  model: STORIES_DIR,
  calib: { path: TINYSTORIES_TEXT },
  eval: { path: TINYSTORIES_TEXT },
  method: 'kqsvd',
  ranks: { k: 4, v: 4 },
  keySpace: 'pre-rope',
  window: 64,
  calibWindows: 3,
  evalWindows: 2,
  seed,
});

const cacheDirs = (dir: string) => new Set(fs.existsSync(dir) ? fs.readdirSync(dir) : []);

/** Runs a compress job to its end; returns its events and the job cache folder it used. */
async function runJob(a: RankwiseApi, s: JobSettings, dir = engineDir) {
  const before = cacheDirs(path.join(dir, 'cache'));
  const job = await a.startJob(s);
  const events = await settle(a, job.id);
  const added = [...cacheDirs(path.join(dir, 'cache'))].filter((d) => !before.has(d));
  return { id: job.id, events, cacheDir: added.length === 1 ? path.join(dir, 'cache', added[0]) : null };
}

const cachedFlags = (events: JobEvent[]) =>
  events.flatMap((e) => (e.type === 'profile' ? [[e.layer, e.cached] as const] : []));
const logs = (events: JobEvent[]) => events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
const partials = (dir: string) =>
  (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.partial'));

function truncate(file: string, bytes: number) {
  fs.truncateSync(file, bytes);
}

/** Flips `count` bytes at the end of the file (the tensor data), keeping its size. */
function flipTail(file: string, count: number) {
  const b = fs.readFileSync(file);
  for (let i = b.length - count; i < b.length; i++) b[i] ^= 0xff;
  fs.writeFileSync(file, b);
}

/** Changes one digit of a stored error figure in the header's metadata (still valid JSON, same size). */
function tamperHeaderFigure(file: string) {
  const b = fs.readFileSync(file);
  const at = b.indexOf('error\\":0.') + 'error\\":0.'.length;
  expect(at).toBeGreaterThan(20);
  const d = b[at] - 0x30;
  expect(d >= 0 && d <= 9).toBe(true);
  b[at] = 0x30 + ((d + 1) % 10);
  fs.writeFileSync(file, b);
}

describe('the job cache checks what it reads back', () => {
  it('a truncated or empty cached layer is fitted again and replaced; the job succeeds', async () => {
    const first = await runJob(api, settings(101));
    expect(first.events.at(-1)).toMatchObject({ state: 'done' });
    expect(first.cacheDir).not.toBeNull();
    const cacheDir = first.cacheDir!;
    const before = await api.getResult(first.id);

    truncate(layerFile(cacheDir, 1), Math.floor(fs.statSync(layerFile(cacheDir, 1)).size / 2));
    truncate(layerFile(cacheDir, 2), 0);
    const second = await runJob(api, settings(101));
    expect(second.events.at(-1)).toMatchObject({ type: 'state', state: 'done' });
    expect(cachedFlags(second.events)).toEqual([
      [0, true],
      [1, false],
      [2, false],
      [3, true],
      [4, true],
    ]);
    const messages = logs(second.events);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toContain(layerFile(cacheDir, 1));
    expect(messages[1]).toContain(layerFile(cacheDir, 2));
    const after = await api.getResult(second.id);
    expect(after.perplexity.compressed).toBeCloseTo(before.perplexity.compressed, 9);
    // the bad files were replaced by good ones
    for (const l of [1, 2]) expect((await readStoredLayer(layerFile(cacheDir, l))).layer).toBe(l);
    expect(partials(engineDir)).toEqual([]);

    // and a third run takes every layer from the cache again, without a word
    const third = await runJob(api, settings(101));
    expect(cachedFlags(third.events).every(([, cached]) => cached)).toBe(true);
    expect(logs(third.events)).toEqual([]);
  });

  it('flipped bytes in a cached layer are caught by its checksum, not used', async () => {
    const first = await runJob(api, settings(102));
    expect(first.events.at(-1)).toMatchObject({ state: 'done' });
    const cacheDir = first.cacheDir!;
    const before = await api.getResult(first.id);

    flipTail(layerFile(cacheDir, 3), 200);
    tamperHeaderFigure(layerFile(cacheDir, 4));
    const second = await runJob(api, settings(102));
    expect(second.events.at(-1)).toMatchObject({ type: 'state', state: 'done' });
    expect(cachedFlags(second.events)).toEqual([
      [0, true],
      [1, true],
      [2, true],
      [3, false],
      [4, false],
    ]);
    const messages = logs(second.events);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toContain(layerFile(cacheDir, 3));
    expect(messages[1]).toContain(layerFile(cacheDir, 4));
    const after = await api.getResult(second.id);
    expect(after.perplexity.compressed).toBeCloseTo(before.perplexity.compressed, 9);
    expect(after.layers.map((l) => l.error)).toEqual(before.layers.map((l) => l.error));
    await expect(readStoredLayer(layerFile(cacheDir, 3))).resolves.toMatchObject({ layer: 3 });
  });

  it('a damaged cached layer read by an export is a bad-input error naming the file', async () => {
    const first = await runJob(api, settings(103));
    expect(first.events.at(-1)).toMatchObject({ state: 'done' });
    const file = layerFile(first.cacheDir!, 2);
    flipTail(file, 200);
    const job = await api.exportJob({ jobId: first.id, out: path.join(tmp.dir, 'export-103'), onnx: false });
    const end = (await settle(api, job.id)).at(-1);
    expect(end).toMatchObject({ type: 'state', state: 'failed', error: { kind: 'bad-input', file } });
    expect(end?.type === 'state' && end.error?.message).toMatch(/damaged.*run the compress job again/);
  });
});

describe('damaged job files', () => {
  it('a truncated result.json is a bad-input error naming the file, not an internal error', async () => {
    const first = await runJob(api, settings(104));
    expect(first.events.at(-1)).toMatchObject({ state: 'done' });
    const file = path.join(engineDir, 'jobs', first.id, RESULT_FILE);
    truncate(file, Math.floor(fs.statSync(file).size / 2));
    const err = await api.getResult(first.id).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'bad-input', file });
    expect((err as Error).message).toMatch(/result\.json.*damaged.*run the job again/);
  });

  it('a truncated plan.json fails an export with a bad-input error naming the file', async () => {
    const first = await runJob(api, settings(105));
    expect(first.events.at(-1)).toMatchObject({ state: 'done' });
    const file = path.join(engineDir, 'jobs', first.id, PLAN_META);
    truncate(file, Math.floor(fs.statSync(file).size / 2));
    const job = await api.exportJob({ jobId: first.id, out: path.join(tmp.dir, 'export-105'), onnx: false });
    const end = (await settle(api, job.id)).at(-1);
    expect(end).toMatchObject({ type: 'state', state: 'failed', error: { kind: 'bad-input', file } });
    expect(end?.type === 'state' && end.error?.message).toMatch(/plan\.json.*damaged.*run the job again/);
  });

  it('a job whose job.json is damaged stays listed after a restart, failed and naming the file', async () => {
    const dir = path.join(tmp.dir, 'restart');
    const before = createEngineApi({ dir });
    const first = await runJob(before, settings(106), dir);
    expect(first.events.at(-1)).toMatchObject({ state: 'done' });
    await before.close();
    const file = path.join(dir, 'jobs', first.id, JOB_FILE);
    truncate(file, Math.floor(fs.statSync(file).size / 2));

    const after = createEngineApi({ dir });
    try {
      const listed = (await after.listJobs()).find((j) => j.id === first.id);
      expect(listed).toMatchObject({
        id: first.id,
        kind: 'compress',
        state: 'failed',
        settings: { seed: 106, method: 'kqsvd' },
        error: { kind: 'bad-input', file },
      });
      expect(listed?.error?.message).toMatch(/job\.json.*damaged/);
      // resuming runs it again, from the job cache
      await after.resumeJob(first.id);
      const events = await settle(after, first.id);
      expect(events.at(-1)).toMatchObject({ state: 'done' });
      expect((await after.getResult(first.id)).layers).toHaveLength(5);
    } finally {
      await after.close();
    }
    // the summary on disk is whole again
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).summary.state).toBe('done');
  });

  it('a job written with report version 1 (snake_case keys) reads in today’s casing and exports', async () => {
    const first = await runJob(api, settings(107));
    expect(first.events.at(-1)).toMatchObject({ state: 'done' });
    const want = await api.getResult(first.id);
    const jobDir = path.join(engineDir, 'jobs', first.id);
    const snake = (v: unknown, record = false): unknown =>
      Array.isArray(v)
        ? v.map((x) => snake(x))
        : typeof v === 'object' && v !== null
          ? Object.fromEntries(
              Object.entries(v).map(([k, x]) => [
                record ? k : k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
                snake(x, k === 'seconds'),
              ]),
            )
          : v;
    const resultFile = path.join(jobDir, RESULT_FILE);
    fs.writeFileSync(resultFile, JSON.stringify(snake(want)));
    expect(fs.readFileSync(resultFile, 'utf8')).toContain('"kv_bytes_per_token"');
    const planFile = path.join(jobDir, PLAN_META);
    const plan = JSON.parse(fs.readFileSync(planFile, 'utf8')) as { report: unknown };
    fs.writeFileSync(planFile, JSON.stringify({ ...plan, report: snake(plan.report) }));

    expect(await api.getResult(first.id)).toEqual(want);
    const job = await api.exportJob({ jobId: first.id, out: path.join(tmp.dir, 'export-107'), onnx: false });
    expect((await settle(api, job.id)).at(-1)).toMatchObject({ state: 'done' });
    const report = await api.getExportReport(job.id);
    expect(report.compress).toMatchObject({ keySpace: want.keySpace, kvBytesPerToken: want.kvBytesPerToken });
  });

  it('a job folder with nothing readable is reported, not listed, and does not stop the others', async () => {
    const dir = path.join(tmp.dir, 'unreadable');
    const bad = path.join(dir, 'jobs', 'not-a-job');
    fs.mkdirSync(bad, { recursive: true });
    fs.writeFileSync(path.join(bad, JOB_FILE), '{"summary": {"id": "not-a-');
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const a = createEngineApi({ dir });
    try {
      expect(await a.listJobs()).toEqual([]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.some((w) => w.includes(path.join(bad, JOB_FILE)))).toBe(true);
    } finally {
      process.off('warning', onWarning);
      await a.close();
    }
  });

  it('job files are written through unique temporary names: concurrent writers never clash', async () => {
    const file = path.join(tmp.dir, 'atomic', 'job.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const texts = Array.from({ length: 16 }, (_, i) =>
      JSON.stringify({ writer: i, pad: 'x'.repeat(50_000) }),
    );
    await Promise.all(texts.map((t) => writeFileAtomic(file, t)));
    expect(texts).toContain(fs.readFileSync(file, 'utf8'));
    expect(fs.readdirSync(path.dirname(file))).toEqual(['job.json']);
  });
});
