/**
 * `rankwise serve` on a fresh clone: it builds the wizard before it listens when the repository's build is
 * missing or stale (main/cli/renderer-build.ts), serves a --static folder as it is, and still starts, with
 * the page's instructions, when the build cannot be made. The real vite build goes to a temporary folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { serveCommand } from '../../main/cli/commands/serve.ts';
import {
  DEFAULT_STATIC_DIR,
  ensureRendererBuild,
  type EnsureRendererOptions,
} from '../../main/cli/renderer-build.ts';
import { startServer } from '../../main/server/server.ts';
import { httpGet } from './client.ts';
import { fakeApi } from './fake-api.ts';
import { capture, makeFolders, until } from './fixture.ts';

const folders = makeFolders();
afterAll(() => folders.cleanup());
afterEach(() => vi.restoreAllMocks());

/** Runs serve with `argv` and a stand-in for the build step; returns what it printed and the build calls. */
async function serveWith(argv: string[], result: Awaited<ReturnType<typeof ensureRendererBuild>>) {
  const calls: EnsureRendererOptions[] = [];
  const ensureRenderer = async (o: EnsureRendererOptions) => {
    calls.push(o);
    o.log('building the wizard (stand-in)');
    return result;
  };
  const out = capture();
  const stop = new AbortController();
  const running = serveCommand(['--root', folders.root, ...argv], () => fakeApi(), {
    signal: stop.signal,
    ensureRenderer,
  });
  await until(() => /Ctrl\+C|"url"/.test(out.stdout));
  stop.abort();
  await running;
  vi.restoreAllMocks();
  return { out, calls };
}

describe('rankwise serve builds the wizard on demand', () => {
  it('checks the repository build before it listens, and says what it does', async () => {
    const { out, calls } = await serveWith([], { state: 'missing', built: true });
    expect(calls.map((c) => c.staticDir)).toEqual([DEFAULT_STATIC_DIR]);
    expect(out.stderr).toContain('rankwise serve: building the wizard (stand-in)');
    // the build came before the address
    expect(out.stdout).toMatch(/Open this address/);
  });

  it('serves a --static folder as it is', async () => {
    const { calls } = await serveWith(['--static', folders.staticDir], { state: 'fresh', built: false });
    expect(calls).toEqual([]);
  });

  it('still starts when the build fails, and says why', async () => {
    const { out } = await serveWith(['--json'], {
      state: 'missing',
      built: false,
      error: 'vite is not installed',
    });
    expect(JSON.parse(out.stdout).static).toBe(DEFAULT_STATIC_DIR);
    expect(out.stderr).toContain('rankwise serve: could not build the wizard: vite is not installed');
  });

  it('--quiet keeps the build messages off stderr', async () => {
    const { out } = await serveWith(['--json', '--quiet'], { state: 'missing', built: true });
    expect(out.stderr).toBe('');
  });
});

describe('the real build', () => {
  it('builds the renderer with vite into a missing folder, which the server then serves', async () => {
    const staticDir = path.join(folders.base, 'dist', 'renderer');
    const log: string[] = [];
    const r = await ensureRendererBuild({ staticDir, log: (m) => log.push(m) });
    expect(r).toEqual({ state: 'missing', built: true });
    expect(log.join('\n')).toMatch(/building the wizard[\s\S]*built the wizard in/);
    // the sources are older than the build: the next start does not build again
    expect((await ensureRendererBuild({ staticDir, log: () => {} })).state).toBe('fresh');

    const server = await startServer({ api: fakeApi(), roots: [folders.root], staticDir });
    try {
      const page = await httpGet(server.port, '/');
      expect(page.status).toBe(200);
      expect(page.body).not.toMatch(/not built yet/);
      const script = /<script[^>]*src="\.\/(assets\/[^"]+\.js)"/.exec(page.body);
      expect(script).not.toBeNull();
      const js = await httpGet(server.port, `/${script![1]}`);
      expect(js.status).toBe(200);
      expect(js.headers['content-type']).toMatch(/javascript/);
      expect(fs.readdirSync(path.dirname(staticDir))).toEqual(['renderer']);
    } finally {
      await server.close();
    }
  }, 120_000);
});
