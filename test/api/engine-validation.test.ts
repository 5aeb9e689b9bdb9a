/**
 * Audit #13, item 9, through the engine API itself (what the server and the IPC handlers hand calls to,
 * and the checks the CLI shares): every invalid argument is refused with a bad-input error naming the
 * field, before any job starts; the model-dependent ones (ranks within the head dimension, layers within
 * the model, one weight per layer) against stories260K (5 layers, head dimension 8, context 512).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobId, JobSettings } from '../../main/contract/index.ts';
import { createEngineApi } from '../../main/api/engine-api.ts';
import { RankwiseError } from '../../main/core/errors.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import {
  INVALID_EXPORT_FOR_STORIES,
  INVALID_EXPORT_PATCHES,
  invalidForStories,
  invalidSettings,
} from './invalid-cases.ts';
import { settle } from '../helpers/jobs.ts';

const tmp = tempDir('rankwise-validation-');
let api: ReturnType<typeof createEngineApi>;
let doneJob: JobId;

/** A small valid job: the invalid ones are this with one thing wrong. */
const VALID: JobSettings = {
  model: STORIES_DIR,
  calib: { path: TINYSTORIES_TEXT },
  eval: { path: TINYSTORIES_TEXT },
  method: 'ksvd',
  budget: 0.05,
  keySpace: 'pre-rope',
  window: 64,
  calibWindows: 3,
  evalWindows: 1,
};

beforeAll(async () => {
  api = createEngineApi({ dir: path.join(tmp.dir, 'engine') });
  const job = await api.startJob(VALID);
  expect((await settle(api, job.id)).at(-1)).toMatchObject({ state: 'done' });
  doneJob = job.id;
});
afterAll(async () => {
  await api?.close();
  tmp.cleanup();
});

/** The call must be refused: a bad-input RankwiseError whose message matches `field`. */
async function refused(call: () => Promise<unknown>, field: RegExp): Promise<void> {
  let outcome: unknown;
  try {
    outcome = await call();
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(RankwiseError);
    expect((e as RankwiseError).kind, String(e)).toBe('bad-input');
    expect((e as Error).message).toMatch(field);
    return;
  }
  throw new Error(`accepted: ${JSON.stringify(outcome)}`);
}

describe('startJob and estimate refuse invalid settings, naming the field', () => {
  it.each([...invalidSettings(VALID), ...invalidForStories(VALID)])('%s', async (_name, settings, field) => {
    const before = (await api.listJobs()).length;
    await refused(() => api.startJob(settings as JobSettings), field);
    await refused(() => api.estimate(settings as JobSettings), field);
    expect((await api.listJobs()).length).toBe(before);
  });

  it('accepts valid settings', async () => {
    expect(await api.estimate(VALID)).toMatchObject({ fits: true });
    const { budget: _b, ...noTarget } = VALID;
    expect(await api.estimate({ ...noTarget, ranks: { k: 8, v: 1 } })).toMatchObject({ fits: true });
    expect(await api.estimate({ ...VALID, method: 'stief', stief: { steps: 0, lr: 0.01 } })).toMatchObject({
      fits: true,
    });
  });
});

describe('exportJob refuses what it used to export silently', () => {
  it.each([...INVALID_EXPORT_PATCHES, ...INVALID_EXPORT_FOR_STORIES])('%s', async (_name, patch, field) => {
    const before = (await api.listJobs()).length;
    const req = { jobId: doneJob, out: path.join(tmp.dir, 'never-written'), ...(patch as object) };
    await refused(() => api.exportJob(req as never), field);
    expect((await api.listJobs()).length).toBe(before);
  });

  it('refuses an empty destination', async () => {
    await refused(() => api.exportJob({ jobId: doneJob, out: '' }), /req\.out/);
  });
});

describe('reallocate, startTry, previewData and the rest refuse by field', () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      'an override for layer 77',
      { overrides: [{ layer: 77, kRank: 4, vRank: 4 }] },
      /req\.overrides\[0\]\.layer.*5/,
    ],
    [
      'an override rank past the head dim',
      { overrides: [{ layer: 0, kRank: 16, vRank: 4 }] },
      /req\.overrides\[0\]\.kRank.*8/,
    ],
    ['budget and kvFraction at once', { budget: 0.1, kvFraction: 0.5 }, /req\.budget.*req\.kvFraction/],
    ['kvFraction 2', { kvFraction: 2 }, /req\.kvFraction/],
    ['layerWeights of the wrong length', { layerWeights: [1] }, /req\.layerWeights.*5/],
  ])('reallocate: %s', async (_name, patch, field) => {
    await refused(() => api.reallocate({ jobId: doneJob, ...patch } as never), field);
  });

  it('reallocate still answers a valid request', async () => {
    const a = await api.reallocate({ jobId: doneJob, kvFraction: 0.5 });
    expect(a.layers).toHaveLength(5);
  });

  it('startTry: ranks for layer 77 of a job’s model', async () => {
    await refused(
      () =>
        api.startTry({
          model: { jobId: doneJob, ranks: [{ layer: 77, kRank: 4, vRank: 4 }] },
          prompt: 'Hi',
        }),
      /req\.model\.ranks\[0\]\.layer.*5/,
    );
  });

  it.each<[string, unknown, RegExp]>([
    ['window 1', { model: STORIES_DIR, source: { path: TINYSTORIES_TEXT }, window: 1 }, /req\.window/],
    ['window 1.5', { model: STORIES_DIR, source: { path: TINYSTORIES_TEXT }, window: 1.5 }, /req\.window/],
    ['window 2e6', { model: STORIES_DIR, source: { path: TINYSTORIES_TEXT }, window: 2e6 }, /req\.window/],
    ['no source', { model: STORIES_DIR, window: 64 }, /req\.source/],
  ])('previewData: %s', async (_name, req, field) => {
    await refused(() => api.previewData(req as never), field);
  });

  it.each<[string, () => Promise<unknown>, RegExp]>([
    ['inspect(5)', () => api.inspect(5 as never), /modelDir/],
    ['getResult("")', () => api.getResult(''), /\bid\b/],
    ['cancelJob(null)', () => api.cancelJob(null as never), /\bid\b/],
    ['choosePath("home")', () => api.choosePath('home' as never), /purpose/],
    ['browse(7)', () => api.browse(7 as never), /\bdir\b/],
  ])('%s', async (_name, call, field) => {
    await refused(call, field);
  });
});
