/**
 * A finished job leaves nothing behind in the host process: its worker thread ends (with its event loop,
 * its file descriptors and its memory), so threads, descriptors and resident memory stay flat over many
 * jobs (audit #13, item 6: each job used to leave +2 threads, +10 fds and ~50 MB behind for good).
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobSettings } from '../../main/contract/index.ts';

import { compressToPlan } from '../../main/jobs/compress.ts';
import type { WebSocketApi } from '../../renderer/transport/websocket.ts';
import { serveEngine, type SocketApi } from '../helpers/socket-api.ts';
import { SHARED_TESTDATA, STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { settledState } from '../helpers/jobs.ts';

// The jobs go through the browser-mode server, as the audit ran them: engine, socket and client in one process.
const tmp = tempDir();
let served: SocketApi;
let api: WebSocketApi;
beforeAll(async () => {
  served = await serveEngine(tmp.dir, [SHARED_TESTDATA, tmp.dir]);
  api = served.api;
});
afterAll(async () => {
  await served?.close();
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
  calibWindows: 2,
  evalWindows: 1,
  // two cache keys: half the jobs fit their layers, half load them from the job cache
  seed: seed % 2,
});

/** Descriptors of this process open on files inside `dir`. */
function openUnder(dir: string): string[] {
  return fs
    .readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((target) => target.startsWith(fs.realpathSync(dir) + path.sep));
}

function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

async function figures() {
  await sleep(100);
  collectGarbage();
  await sleep(100);
  return {
    threads: fs.readdirSync('/proc/self/task').length,
    fds: fs.readdirSync('/proc/self/fd').length,
    rssMiB: process.memoryUsage().rss / 2 ** 20,
  };
}

describe.runIf(process.platform === 'linux')('finished jobs release their worker', () => {
  it('20 jobs: threads, file descriptors and memory stay flat', { timeout: 120_000 }, async () => {
    const seen: Awaited<ReturnType<typeof figures>>[] = [];
    let after5 = null as Awaited<ReturnType<typeof figures>> | null;
    for (let i = 0; i < 20; i++) {
      const job = await api.startJob(settings(i));
      expect(await settledState(api, job.id)).toBe('done');
      const f = await figures();
      seen.push(f);
      if (i === 4) after5 = f;
    }
    const after20 = seen.at(-1)!;
    const fmt = (f: typeof after20) => `${f.threads} threads, ${f.fds} fds, ${f.rssMiB.toFixed(0)} MiB`;
    console.log(`after job 1: ${fmt(seen[0])}; job 5: ${fmt(after5!)}; job 20: ${fmt(after20)}`);
    expect(after20.threads).toBe(after5!.threads);
    expect(after20.fds).toBeLessThanOrEqual(after5!.fds + 2);
    expect(after20.rssMiB).toBeLessThanOrEqual(after5!.rssMiB + 60);
  });
});

describe.runIf(process.platform === 'linux')('a failed job closes what it opened', () => {
  it('a device that is not available: the model file is closed, not left to the garbage collector', async () => {
    // DirectML never exists on Linux, so Engine.create fails after the model was opened
    const failed = compressToPlan(
      {
        modelDir: STORIES_DIR,
        calib: TINYSTORIES_TEXT,
        eval: TINYSTORIES_TEXT,
        method: 'kqsvd',
        ranks: { k: 4, v: 4 },
        window: 64,
        calibWindows: 2,
        evalWindows: 1,
        device: 'dml',
      },
      {},
    );
    await expect(failed).rejects.toMatchObject({ kind: 'bad-input' });
    // before the fix the checkpoint's FileHandle stayed open until a GC closed it (DEP0137)
    expect(openUnder(STORIES_DIR)).toEqual([]);
  });
});
