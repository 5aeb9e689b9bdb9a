/**
 * Try it through RankwiseApi: a finished job's compressed model (built in memory from its plan, with a
 * layer set by hand) streams beside the original in a worker; the streamed text is the result's text;
 * Stop ends it early with what was generated; bad requests are refused by field; runs are not listed.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobEvent, JobId, JobSettings } from '../../main/contract/index.ts';
import { createEngineApi } from '../../main/api/engine-api.ts';
import { RankwiseError } from '../../main/core/errors.ts';
import { runTry } from '../../main/generate/try-run.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { settle } from '../helpers/jobs.ts';

const tmp = tempDir();
let api: ReturnType<typeof createEngineApi>;
let jobId: JobId;

const settings: JobSettings = {
  model: STORIES_DIR,
  calib: { path: TINYSTORIES_TEXT },
  eval: { path: TINYSTORIES_TEXT },
  method: 'kqsvd',
  kvFraction: 0.5,
  keySpace: 'pre-rope',
  window: 128,
  calibWindows: 4,
  evalWindows: 1,
};

beforeAll(async () => {
  api = createEngineApi({ dir: path.join(tmp.dir, 'engine') });
  const job = await api.startJob(settings);
  jobId = job.id;
  const events = await settle(api, job.id);
  expect(events.at(-1)).toMatchObject({ state: 'done' });
});
afterAll(async () => {
  await api.close();
  tmp.cleanup();
});

describe('Try it through the API', () => {
  it("streams the job's model beside the original; the streams are the result's texts", async () => {
    const ranks = [{ layer: 0, kRank: 8, vRank: 8 }];
    const run = await api.startTry({
      model: { jobId, ranks },
      compare: { dir: STORIES_DIR },
      prompt: 'Once upon a time',
      maxNewTokens: 40,
    });
    expect(run.kind).toBe('try');
    const streamed = { model: '', compare: '' };
    const events = await settle(api, run.id, (e) => {
      if (e.type === 'token') streamed[e.side] += e.text;
    });
    expect(events.at(-1)).toMatchObject({ state: 'done' });
    const tokens = events.filter((e) => e.type === 'token');
    // the two sides take turns, so both streams advance together
    expect(tokens.slice(0, 4).map((e) => (e as { side: string }).side)).toEqual([
      'model',
      'compare',
      'model',
      'compare',
    ]);
    const result = await api.getTryResult(run.id);
    const [p] = result.prompts;
    expect(p.model.text).toBe(streamed.model);
    expect(p.compare!.text).toBe(streamed.compare);
    expect(p.model.ids).toHaveLength(40);
    expect(p.comparison!.klPositions).toBe(40);

    // the hand-set layer is in the model tried: its cache is the re-allocated one, byte for byte (F32)
    const allocation = await api.reallocate({ jobId, overrides: ranks });
    expect(p.model.kvBytesPerToken).toBe(allocation.kvBytesPerToken.compressed);
    expect(p.compare!.kvBytesPerToken).toBe(allocation.kvBytesPerToken.original);
    // the original side is the original model's own greedy text
    const direct = await runTry({
      model: { dir: STORIES_DIR },
      prompts: ['Once upon a time'],
      maxNewTokens: 40,
    });
    expect(p.compare!.ids).toEqual(direct.prompts[0].model.ids);

    // a Try-it run is not among the recent jobs, and its summary is not a job's
    expect((await api.listJobs()).map((j) => j.id)).not.toContain(run.id);
    await expect(api.getResult(run.id)).rejects.toThrow(/Try-it run/);
  });

  it('Stop (cancelJob) ends a run early, with what was generated', async () => {
    const run = await api.startTry({
      model: { dir: STORIES_DIR },
      prompt: 'Once upon a time',
      maxNewTokens: 400,
    });
    let asked = false;
    const events = await settle(api, run.id, (e) => {
      if (e.type === 'token' && e.index === 5 && !asked) {
        asked = true;
        void api.cancelJob(run.id);
      }
    });
    expect(events.at(-1)).toMatchObject({ state: 'done' });
    const result = await api.getTryResult(run.id);
    expect(result.prompts[0].model.stopReason).toBe('stopped');
    expect(result.prompts[0].model.ids.length).toBeLessThan(400);
  });

  it.each([
    [{ model: { dir: STORIES_DIR }, prompt: '  ' }, /the prompt is empty/],
    [{ model: { dir: STORIES_DIR }, prompt: 'Hi', maxNewTokens: 0 }, /whole number from 1/],
    [{ model: { dir: STORIES_DIR }, prompt: 'Hi', temperature: -1 }, /temperature must be a number from 0/],
    [{ model: { jobId: 'nope' }, prompt: 'Hi' }, /no job with id nope/],
    [{ model: { jobId: 'x', ranks: [{ layer: -1, kRank: 1, vRank: 1 }] }, prompt: 'Hi' }, /ranks\[0\]/],
    [{ model: 'dir', prompt: 'Hi' }, /model must be \{dir\}/],
  ])('refuses a malformed request by field: %j', async (req, message) => {
    const err = await api.startTry(req as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RankwiseError);
    expect((err as RankwiseError).kind).toBe('bad-input');
    expect((err as Error).message).toMatch(message);
  });

  it('keeps the results of the last 16 finished runs, not of every run ever', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 17; i++) {
      const run = await api.startTry({ model: { dir: STORIES_DIR }, prompt: 'Once', maxNewTokens: 1 });
      await settle(api, run.id);
      ids.push(run.id);
    }
    await expect(api.getTryResult(ids[0])).rejects.toThrow(/no job with id/);
    for (const id of ids.slice(1)) expect((await api.getTryResult(id)).prompts).toHaveLength(1);
  });

  it('a prompt longer than the context fails the run with a bad-input error', async () => {
    const run = await api.startTry({ model: { dir: STORIES_DIR }, prompt: 'Once upon a time '.repeat(200) });
    const events = await settle(api, run.id);
    const last = events.at(-1) as Extract<JobEvent, { type: 'state' }>;
    expect(last.state).toBe('failed');
    expect(last.error).toMatchObject({ kind: 'bad-input' });
    expect(last.error!.message).toMatch(/context is 512/);
  });
});
