/**
 * A whole job through the browser-mode server with the real engine behind it: a real socket on loopback,
 * the renderer's transport, worker-thread jobs, events in order, cancel, and an export that is verified.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobEvent, JobId, JobSettings } from '../../main/contract/index.ts';
import { ONNX_FILE } from '../../main/export/onnx-files.ts';
import type { WebSocketApi } from '../../renderer/transport/websocket.ts';
import { serveEngine, type SocketApi } from '../helpers/socket-api.ts';
import { SHARED_TESTDATA, STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
let served: SocketApi;
let api: WebSocketApi;
let finished: JobId;

beforeAll(async () => {
  served = await serveEngine(tmp.dir, [SHARED_TESTDATA, tmp.dir]);
  api = served.api;
});
afterAll(async () => {
  await served?.close();
  tmp.cleanup();
});

const settings: JobSettings = {
  model: STORIES_DIR,
  calib: { path: TINYSTORIES_TEXT },
  eval: { path: TINYSTORIES_TEXT },
  method: 'ksvd',
  budget: 0.05,
  keySpace: 'pre-rope',
  window: 128,
  calibWindows: 5,
  evalWindows: 2,
};

function until(id: JobId, onEvent?: (e: JobEvent) => void): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  return new Promise((resolve) => {
    const stop = api.subscribe(id, (e) => {
      events.push(e);
      onEvent?.(e);
      if (e.type === 'state' && ['done', 'failed', 'cancelled'].includes(e.state)) {
        stop();
        resolve(events);
      }
    });
  });
}

describe('the engine over the WebSocket server', () => {
  it('inspects, previews, runs a job with ordered events, and exports it verified', async () => {
    const card = await api.inspect(STORIES_DIR);
    expect(card).toMatchObject({ layers: 5, kvHeads: 4, headDim: 8, kvBytesPerToken: 1280 });
    const preview = await api.previewData({
      model: STORIES_DIR,
      source: { path: TINYSTORIES_TEXT },
      window: 128,
    });
    expect(preview.windows).toBeGreaterThan(100);
    expect(preview.sample.length).toBeGreaterThan(50);
    const estimate = await api.estimate(settings);
    expect(estimate.fits).toBe(true);

    const job = await api.startJob(settings);
    const events = await until(job.id);
    expect(events.at(-1)).toMatchObject({ type: 'state', state: 'done' });
    const seqs = events.map((e) => e.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1);
    expect(events.filter((e) => e.type === 'profile')).toHaveLength(5);
    const result = await api.getResult(job.id);
    expect(result.layers).toHaveLength(5);
    finished = job.id;

    const out = path.join(tmp.dir, 'exported');
    const exp = await api.exportJob({ jobId: job.id, out, onnx: true });
    expect((await until(exp.id)).at(-1)).toMatchObject({ state: 'done' });
    const report = await api.getExportReport(exp.id);
    expect(report.export.verification.passed).toBe(true);
    expect(fs.existsSync(path.join(out, ONNX_FILE))).toBe(true);
  });

  it('cancels a running job over the socket', async () => {
    const job = await api.startJob({ ...settings, calibWindows: 10, seed: 3 });
    const events = await until(job.id, (e) => {
      if (e.type === 'progress') void api.cancelJob(job.id);
    });
    expect(events.at(-1)).toMatchObject({ state: 'cancelled' });
  });

  it('refuses settings the model cannot take, naming the field (audit #13, item 9)', async () => {
    const { budget: _b, ...noTarget } = settings;
    await expect(api.startJob({ ...noTarget, ranks: { k: 1000, v: 4 } })).rejects.toMatchObject({
      info: { kind: 'bad-input', message: expect.stringMatching(/settings\.ranks\.k.*head dimension 8/) },
    });
    await expect(api.estimate({ ...settings, layerWeights: [1, 1] })).rejects.toMatchObject({
      info: { kind: 'bad-input', message: expect.stringMatching(/settings\.layerWeights.*5/) },
    });
    const out = path.join(tmp.dir, 'never-exported');
    for (const [ranks, field] of [
      [[{ layer: 77, kRank: 4, vRank: 4 }], /req\.ranks\[0\]\.layer/],
      [[{ layer: 0, kRank: 1000, vRank: 4 }], /req\.ranks\[0\]\.kRank/],
      [[{ layer: 0, kRank: 4, vRank: -2 }], /req\.ranks\[0\]\.vRank/],
    ] as const) {
      await expect(api.exportJob({ jobId: finished, out, ranks: [...ranks] })).rejects.toMatchObject({
        info: { kind: 'bad-input', message: expect.stringMatching(field) },
      });
    }
    await expect(api.exportJob({ jobId: finished, out, force: 'yes' as never })).rejects.toMatchObject({
      info: { kind: 'bad-input', message: expect.stringMatching(/req\.force/) },
    });
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses paths outside the folders the server was given', async () => {
    await expect(api.inspect('/etc')).rejects.toMatchObject({ info: { kind: 'bad-input' } });
  });
});
