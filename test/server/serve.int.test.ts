import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { serveCommand, SERVE_USAGE } from '../../main/cli/commands/serve.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import { TestClient } from './client.ts';
import { fakeApi } from './fake-api.ts';
import { capture, makeFolders, until } from './fixture.ts';

const folders = makeFolders();
afterAll(() => folders.cleanup());
afterEach(() => vi.restoreAllMocks());

const wsOf = (url: string) => {
  const u = new URL(url);
  return `ws://${u.host}/api?token=${u.searchParams.get('token')}`;
};

describe('rankwise serve', () => {
  it('--json prints where it listens, serves until stopped, then closes', async () => {
    const out = capture();
    const stop = new AbortController();
    const running = serveCommand(
      ['--root', folders.root, '--static', folders.staticDir, '--json'],
      () => fakeApi(),
      { signal: stop.signal },
    );
    await until(() => out.stdout.includes('\n'));
    const info = JSON.parse(out.stdout);
    expect(info).toMatchObject({ roots: [folders.root], static: folders.staticDir });
    expect(info.url).toBe(`http://127.0.0.1:${info.port}/?token=${info.token}`);
    const client = await TestClient.open(wsOf(info.url));
    expect((await client.request('listJobs')).result).toHaveLength(1);
    stop.abort();
    await running;
    expect((await client.closed).code).toBe(1001);
    expect(out.stderr).toBe('');
  });

  it('prints the address with its token, grants the current folder by default, and warns of a missing build', async () => {
    vi.spyOn(process, 'cwd').mockReturnValue(folders.root);
    const out = capture();
    const stop = new AbortController();
    const running = serveCommand(['--static', folders.unbuilt, '--port', '0'], () => fakeApi(), {
      signal: stop.signal,
    });
    await until(() => /Ctrl\+C/.test(out.stdout));
    const url = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(out.stdout)![1];
    expect(out.stdout).toContain(`Folders it may use: ${folders.root}`);
    expect(out.stderr).toMatch(/npm run build/);
    const client = await TestClient.open(wsOf(url));
    expect((await client.request('browse', [])).result).toMatchObject({ entries: [{ path: folders.root }] });
    stop.abort();
    await running;
  });

  it('takes several roots', async () => {
    const out = capture();
    const stop = new AbortController();
    const running = serveCommand(
      ['--root', folders.root, '--root', folders.sibling, '--static', folders.staticDir, '--json'],
      () => fakeApi(),
      { signal: stop.signal },
    );
    await until(() => out.stdout.includes('\n'));
    expect(JSON.parse(out.stdout).roots).toEqual([folders.root, folders.sibling]);
    stop.abort();
    await running;
  });

  it.each([
    [['--port', 'abc'], /--port/],
    [['--port', '70000'], /--port/],
    [['--root', path.join(folders.base, 'nope')], /nope: folder does not exist/],
    [['--root', path.join(folders.root, 'data.txt')], /not a folder/],
    [['extra'], /unexpected arguments: extra/],
    [['--bogus'], /bogus/],
  ])('refuses %j as bad input, before starting the engine', async (argv, pattern) => {
    const factory = vi.fn(() => fakeApi());
    await expect(serveCommand(argv, factory)).rejects.toMatchObject({
      kind: 'bad-input',
      message: expect.stringMatching(pattern),
    });
    expect(factory).not.toHaveBeenCalled();
  });

  it('says so when no engine was given', async () => {
    await expect(serveCommand(['--root', folders.root])).rejects.toMatchObject({ kind: 'internal' });
  });

  it('has a usage line', () => {
    expect(SERVE_USAGE).toMatch(/^rankwise serve .*--port P.*--root DIR.*--static DIR/);
  });
});

describe('rankwise serve as a process', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('closes its sockets and exits 0 on %s', async (signal) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join('test', 'server', 'serve-child.ts'),
        '--root',
        folders.root,
        '--static',
        folders.staticDir,
        '--json',
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await until(() => stdout.includes('\n'), 30_000);
      const info = JSON.parse(stdout);
      const client = await TestClient.open(wsOf(info.url));
      await client.request('subscribe', ['endless']);
      child.kill(signal);
      expect((await client.closed).code).toBe(1001);
      expect(await exited).toBe(0);
      expect(stderr).toContain('serve returned');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
