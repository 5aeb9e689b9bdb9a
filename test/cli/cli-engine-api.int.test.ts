/**
 * The CLI as a client of the engine API: `rankwise compress` runs a job of the app's engine on its data
 * folder (RANKWISE_HOME), so the job is listed among the app's recent jobs, an identical rerun takes every
 * layer from the job cache (same ranks, same perplexity), --heldout-windows reaches the job, --out exports
 * through an export job of the same engine, and Ctrl-C cancels the job, keeping its finished layers.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createEngineApi, type EngineApi } from '../../main/api/engine-api.ts';
import { snakeKeys } from '../../main/cli/args.ts';
import { runCli } from '../helpers/cli.ts';
import { REPO_ROOT, STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-cli-engine-');
const home = path.join(tmp.dir, 'home');
let earlierHome: string | undefined;
beforeAll(() => {
  earlierHome = process.env.RANKWISE_HOME;
  process.env.RANKWISE_HOME = home;
});
afterAll(() => {
  if (earlierHome === undefined) delete process.env.RANKWISE_HOME;
  else process.env.RANKWISE_HOME = earlierHome;
  tmp.cleanup();
});

/** 20 KB of the excerpt: enough for 8 windows of 64 tokens. */
const TEXT = path.join(tmp.dir, 'small.txt');
fs.writeFileSync(TEXT, fs.readFileSync(TINYSTORIES_TEXT).subarray(0, 20_000));

const COMPRESS = [
  'compress',
  STORIES_DIR,
  '--calib',
  TEXT,
  '--eval',
  TEXT,
  '--method',
  'kqsvd',
  '--kv-fraction',
  '0.5',
  '--key-space',
  'pre-rope',
  '--window',
  '64',
  '--calib-windows',
  '8',
  '--eval-windows',
  '2',
];

/** An engine of its own on the CLI's data folder: what the app sees once the CLI has run. */
async function withApi<T>(work: (api: EngineApi) => Promise<T>): Promise<T> {
  const api = createEngineApi({ dir: home });
  try {
    return await work(api);
  } finally {
    await api.close();
  }
}

async function compressJson(args: string[]) {
  const r = await runCli([...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return { ...r, json: JSON.parse(r.stdout) };
}

const ranksOf = (j: { layers: { k_rank: number; v_rank: number; key_space: string }[] }) =>
  j.layers.map((l) => [l.k_rank, l.v_rank, l.key_space]);

describe('rankwise compress through the engine API', () => {
  let first: { id: string; json: Record<string, unknown> & Parameters<typeof ranksOf>[0] };

  it('runs as a job of the engine, listed among recent jobs, its result the JSON printed', async () => {
    const { json } = await compressJson([...COMPRESS, '-q']);
    expect(json.job).toEqual({ id: expect.any(String), cache: { reused: 0, fitted: 5 } });
    first = { id: json.job.id, json };
    await withApi(async (api) => {
      const listed = (await api.listJobs()).find((j) => j.id === json.job.id);
      expect(listed).toMatchObject({ kind: 'compress', state: 'done', settings: { method: 'kqsvd' } });
      // the same report, in the CLI's snake_case
      const { job: _job, ...report } = json;
      expect(snakeKeys(await api.getResult(json.job.id))).toEqual(report);
      expect(await api.jobs.cacheUse(json.job.id)).toEqual({ reused: 0, fitted: 5 });
    });
  });

  it('an identical rerun is a new job that takes every layer from the cache, with the same result', async () => {
    const { json, stderr } = await compressJson(COMPRESS);
    // progress as before (stage, layer, ETA), after the pre-flight estimate
    expect(stderr).toMatch(/^\[estimate\] about .* of memory/);
    expect(stderr).toMatch(/\[profile\] layer 5 5\/5/);
    expect(json.job.id).not.toBe(first.id);
    expect(json.job.cache).toEqual({ reused: 5, fitted: 0 });
    await withApi(async (api) => {
      expect((await api.listJobs()).map((j) => j.id)).toEqual(
        expect.arrayContaining([first.id, json.job.id]),
      );
      expect(await api.jobs.cacheUse(json.job.id)).toEqual({ reused: 5, fitted: 0 });
      const again = await api.getResult(json.job.id);
      const before = await api.getResult(first.id);
      expect(again.layers).toEqual(before.layers);
      expect(again.profile).toEqual(before.profile);
      expect(again.perplexity).toEqual(before.perplexity);
    });
    expect(ranksOf(json)).toEqual(ranksOf(first.json));
    expect(json.perplexity).toEqual(first.json.perplexity);
  });

  it('the human-readable table names the job and its use of the cache', async () => {
    const r = await runCli([...COMPRESS, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^job\s+[\w-]+ \(5 of 5 layers from the job cache\)$/m);
    expect(r.stderr).toBe('');
  });

  it('--heldout-windows reaches the job: its held-out count, and a cache of its own', async () => {
    expect(first.json).toMatchObject({ calib_windows: 6, heldout_windows: 2 });
    const { json } = await compressJson([...COMPRESS, '--heldout-windows', '3', '-q']);
    expect(json).toMatchObject({ calib_windows: 5, heldout_windows: 3 });
    // other held-out windows measure other errors: nothing of the default run's cache applies
    expect(json.job.cache).toEqual({ reused: 0, fitted: 5 });
    await withApi(async (api) => {
      expect(await api.getResult(json.job.id)).toMatchObject({ calibWindows: 5, heldoutWindows: 3 });
    });
  });

  it('--heldout-windows that leaves nothing to fit on is bad input (exit 2), said in flags', async () => {
    const r = await runCli([...COMPRESS, '--heldout-windows', '8', '-q']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--heldout-windows must leave at least one of the 8 calibration windows/);
  });

  it('--out exports through an export job of the engine; --plan saves a plan `rankwise export` takes', async () => {
    const out = path.join(tmp.dir, 'export');
    const plan = path.join(tmp.dir, 'job.plan');
    const { json } = await compressJson([...COMPRESS, '--out', out, '--no-onnx', '--plan', plan, '-q']);
    expect(json.export).toMatchObject({ dir: out, verification: { passed: true } });
    expect(fs.existsSync(path.join(out, 'config.json'))).toBe(true);
    await withApi(async (api) => {
      const exported = (await api.listJobs()).find((j) => j.kind === 'export' && j.source === json.job.id);
      expect(exported).toMatchObject({ state: 'done', out });
      const report = await api.getExportReport(exported!.id);
      expect(report.compress.layers.map((l) => [l.kRank, l.vRank])).toEqual(
        json.layers.map((l: { k_rank: number; v_rank: number }) => [l.k_rank, l.v_rank]),
      );
    });
    const again = await runCli([
      'export',
      plan,
      '--out',
      path.join(tmp.dir, 'from-plan'),
      '--no-onnx',
      '--json',
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).verification.passed).toBe(true);
  });
});

describe('Ctrl-C', () => {
  it('cancels the job (exit 130), which is listed as cancelled; a rerun reuses its finished layers', async () => {
    // StiefAttention's training is slow enough to interrupt mid-way
    const args = [
      ...COMPRESS.slice(0, 7),
      'stief',
      '--k-rank',
      '4',
      '--v-rank',
      '4',
      '--window',
      '64',
      '--calib-windows',
      '8',
      '--eval-windows',
      '2',
      '--steps',
      '400',
    ];
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'rankwise.mjs'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, RANKWISE_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let interrupted = false;
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      // once two layers are finished, so the cache holds something to reuse
      if (!interrupted && /\[train \w+\] layer 3 /.test(stderr)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(interrupted, stderr).toBe(true);
    expect(code, stderr).toBe(130);
    const message = stderr.trim().split('\n').at(-1)!;
    expect(message).toMatch(/^rankwise compress: stopped \(Ctrl-C\): job [\w-]+ is cancelled/);
    const id = /job ([\w-]+) is cancelled/.exec(message)![1];
    await withApi(async (api) => {
      expect((await api.listJobs()).find((j) => j.id === id)).toMatchObject({ state: 'cancelled' });
    });

    const { json } = await compressJson([...args, '-q']);
    expect(json.job.cache.reused).toBeGreaterThanOrEqual(2);
    expect(json.job.cache.reused + json.job.cache.fitted).toBe(5);
  });
});
