/**
 * Issue 14: stopping `npx rankwise serve` by its wrapper. npm runs the command under `sh -c`; a SIGTERM or
 * SIGHUP to npm ends npm and the shell but never reaches the server, which used to go on serving with
 * nobody to stop it. The server now stops when npm goes (serve.ts, stopRequested).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-serve-parent-');
const live: ChildProcess[] = [];

/** Whether any process of the group led by `pgid` still runs. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function until(test: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await test()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return test();
}

afterAll(() => tmp.cleanup());
afterEach(() => {
  for (const child of live.splice(0)) {
    // the whole group, the server included, whatever the test left
    if (child.pid !== undefined && groupAlive(child.pid)) process.kill(-child.pid, 'SIGKILL');
  }
});

describe.skipIf(process.platform === 'win32')('npx rankwise serve', () => {
  it.each(['SIGTERM', 'SIGHUP'] as const)(
    'stops when the npx wrapper gets %s',
    async (signal) => {
      const staticDir = path.join(tmp.dir, `static-${signal}`);
      fs.mkdirSync(staticDir, { recursive: true });
      fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>t</title>');
      // its own process group, so the test can see (and clean up) everything npx started
      const npx = spawn(
        'npx',
        ['--no-install', 'rankwise', 'serve', '--json', '--static', staticDir, '--root', tmp.dir],
        { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      live.push(npx);
      let out = '';
      let err = '';
      npx.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      npx.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const started = await until(() => out.includes('\n'), 45_000);
      expect(started, err).toBe(true);
      const { port } = JSON.parse(out.split('\n')[0]) as { port: number };
      expect(await portOpen(port)).toBe(true);

      process.kill(npx.pid!, signal);
      expect(await until(() => !groupAlive(npx.pid!), 10_000), 'a process of npx’s group survived').toBe(
        true,
      );
      expect(await portOpen(port)).toBe(false);
    },
    70_000,
  );
});
