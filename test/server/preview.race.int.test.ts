/**
 * Audit #13, item 10: the root check must hold for the file actually read. A child process swaps a file
 * inside the root for a symlink to a file outside every root, as fast as it can, while previewData is
 * called over the real socket with the real engine behind it; no answer may carry the outside text.
 * (The audit saw 402 of 1500 answers leak it.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createEngineApi } from '../../main/api/engine-api.ts';
import { startServer, type RunningServer } from '../../main/server/server.ts';
import { SHARED_TESTDATA, STORIES_DIR, tempDir } from '../helpers/paths.ts';
import { TestClient } from './client.ts';

const CALLS = 1500;
const IN_FLIGHT = 8;
const MARKER = 'QZXJ';

const tmp = tempDir('rankwise-race-');
const base = fs.realpathSync(tmp.dir);
const root = path.join(base, 'root');
const outside = path.join(base, 'outside');
const target = path.join(root, 'data.txt');
const secretFile = path.join(outside, 'secret.txt');
const INSIDE =
  'Once upon a time there was a little cat. It liked to play in the sun with its friends.\n\n'.repeat(4);
const SECRET = `${MARKER} the text of a file outside every root ${MARKER}.\n\n`.repeat(4);

let engine: ReturnType<typeof createEngineApi>;
let server: RunningServer;
let client: TestClient;
let swapper: ChildProcess;

/**
 * Renames a symlink and a regular file over `target` in turn, forever (rename is atomic): the link for
 * 1 ms, the file for 3 ms, so most calls pass the root check and many of those meet the link afterwards.
 */
const SWAPPER = `
const fs = require('node:fs');
const [target, secret, inside, LINK_MS, FILE_MS] = process.argv.slice(1).map((a, i) => (i > 2 ? Number(a) : a));
const link = target + '.link', file = target + '.file';
const cell = new Int32Array(new SharedArrayBuffer(4));
const hold = (ms) => Atomics.wait(cell, 0, 0, ms);
process.send('ready');
for (;;) {
  try { fs.rmSync(link, { force: true }); fs.symlinkSync(secret, link); fs.writeFileSync(file, inside); } catch {}
  try { fs.renameSync(link, target); } catch {}
  hold(LINK_MS);
  try { fs.renameSync(file, target); } catch {}
  hold(FILE_MS);
}
`;

beforeAll(async () => {
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  fs.writeFileSync(target, INSIDE);
  fs.writeFileSync(secretFile, SECRET);
  engine = createEngineApi({ dir: path.join(base, 'engine') });
  server = await startServer({
    api: engine,
    roots: [root, SHARED_TESTDATA],
    staticDir: path.join(base, 'no-build'),
  });
  client = await TestClient.open(`ws://127.0.0.1:${server.port}/api?token=${server.token}`);
});

afterAll(async () => {
  if (swapper && swapper.exitCode === null) {
    const gone = new Promise((resolve) => swapper.once('exit', resolve));
    swapper.kill('SIGKILL');
    await gone;
  }
  await client?.close();
  await server?.close();
  await engine?.close();
  tmp.cleanup();
});

describe('previewData while a file inside the root is swapped for a symlink out of it', () => {
  it(`never answers with the outside file in ${CALLS} calls`, { timeout: 90_000 }, async () => {
    const req = { model: STORIES_DIR, source: { path: target }, window: 8 };
    // the request works at all, and shows the inside text
    const first = await client.request('previewData', [req]);
    expect(first.error, JSON.stringify(first.error)).toBeUndefined();
    expect(JSON.stringify(first.result)).not.toContain(MARKER);

    swapper = spawn(process.execPath, ['-e', SWAPPER, target, secretFile, INSIDE, '1', '3'], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    await new Promise((resolve) => swapper.once('message', resolve));

    const tally = { answered: 0, refused: 0, leaked: 0 };
    const reasons = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < CALLS) {
        next += 1;
        const r = await client.request('previewData', [req]);
        if (JSON.stringify(r).includes(MARKER)) tally.leaked += 1;
        else if (r.error) {
          tally.refused += 1;
          const why = r.error.message.replace(/^\S*: /, '').slice(0, 60);
          reasons.set(why, (reasons.get(why) ?? 0) + 1);
        } else tally.answered += 1;
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    console.log(
      `previewData race: ${CALLS} calls in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
        `${tally.answered} answered with the inside text, ${tally.refused} refused, ${tally.leaked} leaked`,
    );
    console.log('refusals:', Object.fromEntries(reasons));
    expect(tally.leaked).toBe(0);
    // the race was really run: some calls got through to the file, some met the link
    expect(tally.answered).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });
});
