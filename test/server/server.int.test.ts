import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { JobEvent } from '../../main/contract/index.ts';
import { startServer, type RunningServer } from '../../main/server/server.ts';
import { handshakeStatus, httpGet, TestClient } from './client.ts';
import { INVALID_EXPORT_PATCHES, invalidSettings } from '../api/invalid-cases.ts';
import { fakeApi, PROGRESS_STEPS, SETTINGS, type FakeApi } from './fake-api.ts';
import { INDEX_HTML, makeFolders, SECRET, type Folders } from './fixture.ts';

// Made at collection time: the table of refused paths below is built from it.
const folders: Folders = makeFolders();
let api: FakeApi;
let server: RunningServer;
let client: TestClient;
const logged: string[] = [];

const wsUrl = (token = server.token, p = '/api') => `ws://127.0.0.1:${server.port}${p}?token=${token}`;

beforeAll(async () => {
  api = fakeApi();
  server = await startServer({
    api,
    roots: [folders.root],
    staticDir: folders.staticDir,
    log: (m) => logged.push(m),
  });
  client = await TestClient.open(wsUrl());
});

afterAll(async () => {
  await client?.close();
  await server?.close();
  folders.cleanup();
});

/** Waits until `cond` holds (polling), for effects that arrive on their own timers. */
async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the address', () => {
  it('is 127.0.0.1 and nothing else', async () => {
    expect(server.address()).toMatchObject({ address: '127.0.0.1', family: 'IPv4', port: server.port });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    // the token is 32 random bytes in base64url
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const other = await startServer({ api, roots: [folders.root], staticDir: folders.staticDir });
    expect(other.token).not.toBe(server.token);
    await other.close();
  });

  it('refuses connections on the machine’s other addresses', async () => {
    const external = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal && a.family === 'IPv4')
      .map((a) => a!.address);
    for (const host of ['::1', ...external]) {
      const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
        const s = net.connect({ host, port: server.port });
        s.once('connect', () => {
          s.destroy();
          resolve(null);
        });
        s.once('error', (e) => resolve(e));
      });
      expect(error, host).not.toBeNull();
    }
  });
});

describe('request and response', () => {
  it('answers a call with its result', async () => {
    const model = path.join(folders.root, 'model');
    const r = await client.request('inspect', [model]);
    expect(r.error).toBeUndefined();
    expect(r.result).toMatchObject({ dir: model, layers: 2, kvHeads: 2 });
    expect(api.calls.at(-1)).toEqual({ method: 'inspect', params: [model] });
  });

  it('answers a method that returns nothing with null', async () => {
    expect(await client.request('cancelJob', ['job-1'])).toEqual({ id: expect.any(Number), result: null });
  });

  it('passes every other method through', async () => {
    expect((await client.request('listJobs')).result).toMatchObject([{ id: 'job-1', state: 'done' }]);
    expect((await client.request('resumeJob', ['job-1'])).result).toMatchObject({ state: 'running' });
    expect((await client.request('getResult', ['job-1'])).result).toMatchObject({ method: 'kqsvd' });
    expect((await client.request('reallocate', [{ jobId: 'job-1', budget: 0.1 }])).result).toMatchObject({
      feasible: true,
    });
    expect((await client.request('getExportReport', ['job-1'])).result).toMatchObject({ version: 1 });
  });

  it('carries an engine error as ErrorInfo with its kind', async () => {
    const missing = await client.request('getResult', ['missing']);
    expect(missing.result).toBeUndefined();
    expect(missing.error).toEqual({ kind: 'bad-input', message: 'no job "missing"' });

    const unsupported = await client.request('inspect', [path.join(folders.root, 'unsupported')]);
    expect(unsupported.error).toMatchObject({
      kind: 'unsupported-model',
      file: path.join(folders.root, 'unsupported', 'config.json'),
    });

    const internal = await client.request('reallocate', [{ jobId: 'boom' }]);
    expect(internal.error).toEqual({ kind: 'internal', message: 'kaboom' });
  });

  it('turns a result JSON cannot carry into an internal error', async () => {
    const r = await client.request('getExportReport', ['bigint']);
    expect(r.error).toMatchObject({ kind: 'internal', message: expect.stringMatching(/could not be sent/) });
  });

  it('answers choosePath with null and never opens a dialog', async () => {
    const before = api.calls.length;
    for (const purpose of ['model', 'data', 'export']) {
      expect(await client.request('choosePath', [purpose])).toEqual({ id: expect.any(Number), result: null });
    }
    expect(api.calls.length).toBe(before);
  });

  it('answers requests independently: a slow one does not hold up the next', async () => {
    const slow = client.request('getExportReport', ['hang']);
    const fast = await client.request('listJobs');
    expect(fast.result).toHaveLength(1);
    let settled = false;
    void slow.then(() => (settled = true)).catch(() => {});
    await sleep(20);
    expect(settled).toBe(false);
  });
});

describe('subscriptions', () => {
  it('acknowledges, then streams the job’s events in order', async () => {
    const r = await client.request('subscribe', ['job-7']);
    expect(r).toEqual({ id: r.id, result: null });
    // the fake sends its first event inside subscribe(): it must still come after the acknowledgement
    const ackAt = client.frames.indexOf(r);
    const first = client.frames.findIndex((f) => f.type === 'event' && f.subscription === r.id);
    expect(first === -1 || first > ackAt).toBe(true);

    await until(() => client.events(r.id).some((e) => e.type === 'state' && e.state === 'done'));
    const events = client.events(r.id);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i));
    expect(events.map((e) => e.type)).toEqual(['state', ...Array(PROGRESS_STEPS).fill('progress'), 'state']);
    expect(events.every((e) => e.jobId === 'job-7')).toBe(true);
    expect(events.filter((e) => e.type === 'progress').map((e) => (e as { done: number }).done)).toEqual([
      1, 2, 3,
    ]);
  });

  it('unsubscribe stops the events', async () => {
    const before = api.active();
    const r = await client.request('subscribe', ['endless']);
    await until(() => client.events(r.id).length >= 3);
    expect(api.active()).toBe(before + 1);
    const u = await client.request('unsubscribe', [r.id]);
    expect(u).toEqual({ id: u.id, result: null });
    expect(api.active()).toBe(before);
    const count = client.events(r.id).length;
    await sleep(50);
    expect(client.events(r.id).length).toBe(count);
    // a second unsubscribe, or one for an id never opened, is harmless
    expect((await client.request('unsubscribe', [r.id])).result).toBeNull();
    expect((await client.request('unsubscribe', [987654])).result).toBeNull();
  });

  it('keeps subscriptions apart and refuses an id already in use', async () => {
    const a = await client.request('subscribe', ['endless']);
    client.send(JSON.stringify({ id: a.id, method: 'subscribe', params: ['endless'] }));
    const dup = await client.waitFor((f) => f.id === a.id && f.error !== undefined);
    expect(dup.error).toMatchObject({ kind: 'bad-input', message: expect.stringMatching(/already open/) });
    const b = await client.request('subscribe', ['job-8']);
    await until(() => client.events(b.id).some((e) => e.type === 'state' && e.state === 'done'));
    expect(client.events(a.id).every((e: JobEvent) => e.jobId === 'endless')).toBe(true);
    expect(client.events(b.id).every((e: JobEvent) => e.jobId === 'job-8')).toBe(true);
    await client.request('unsubscribe', [a.id]);
  });

  it('answers a refused subscription with the engine’s error', async () => {
    const r = await client.request('subscribe', ['missing']);
    expect(r.error).toEqual({ kind: 'bad-input', message: 'no job "missing"' });
  });

  it('ends every subscription of a connection when it closes', async () => {
    const before = api.active();
    const other = await TestClient.open(wsUrl());
    await other.request('subscribe', ['endless']);
    await other.request('subscribe', ['endless']);
    expect(api.active()).toBe(before + 2);
    await other.close();
    await until(() => api.active() === before);
  });

  it('survives an event it cannot send and an unsubscribe that throws', async () => {
    const other = await TestClient.open(wsUrl());
    const bad = await other.request('subscribe', ['bad-event']);
    await until(() => other.events(bad.id).length >= 2);
    // the unsendable event is dropped (and logged); the ones after it still arrive
    expect(other.events(bad.id).map((e) => e.seq)).not.toContain(1);
    expect(logged.some((m) => /event not sent/.test(m))).toBe(true);
    await other.request('subscribe', ['throwing-unsubscribe']);
    await other.close();
    await until(() => logged.some((m) => /unsubscribe broke/.test(m)));
    expect((await client.request('listJobs')).result).toHaveLength(1);
  });
});

describe('the handshake', () => {
  it('accepts the right token, with no Origin or either loopback Origin', async () => {
    expect(await handshakeStatus(wsUrl())).toBe(101);
    expect(await handshakeStatus(wsUrl(), { origin: `http://127.0.0.1:${server.port}` })).toBe(101);
    expect(await handshakeStatus(wsUrl(), { origin: `http://localhost:${server.port}` })).toBe(101);
    expect(await handshakeStatus(wsUrl(), { headers: { Host: `localhost:${server.port}` } })).toBe(101);
  });

  it('refuses a missing or wrong token with 401', async () => {
    expect(await handshakeStatus(`ws://127.0.0.1:${server.port}/api`)).toBe(401);
    expect(await handshakeStatus(wsUrl(''))).toBe(401);
    expect(await handshakeStatus(wsUrl('wrong'))).toBe(401);
    // same length, one character off
    const flipped = server.token.slice(0, -1) + (server.token.endsWith('A') ? 'B' : 'A');
    expect(await handshakeStatus(wsUrl(flipped))).toBe(401);
  });

  it('refuses another Origin with 403, even with the token', async () => {
    for (const origin of [
      'http://evil.example',
      `http://127.0.0.1:${server.port + 1}`,
      `https://127.0.0.1:${server.port}`,
      `http://127.0.0.1.evil.example:${server.port}`,
      'null',
    ]) {
      expect(await handshakeStatus(wsUrl(), { origin }), origin).toBe(403);
    }
  });

  it('refuses a foreign Host header with 403 (DNS rebinding), on the socket and on pages', async () => {
    for (const host of ['evil.example', `evil.example:${server.port}`, `127.0.0.1:${server.port + 1}`]) {
      expect(await handshakeStatus(wsUrl(), { headers: { Host: host } }), host).toBe(403);
      expect((await httpGet(server.port, '/', { Host: host })).status, host).toBe(403);
    }
  });

  it('answers only at /api', async () => {
    expect(await handshakeStatus(wsUrl(server.token, '/other'))).toBe(404);
  });
});

describe('paths outside the roots', () => {
  const outsideCases = (): [string, string, unknown[]][] => {
    const { root, sibling, outside } = folders;
    const out = path.join(outside, 'model');
    return [
      ['inspect: a folder outside', 'inspect', [out]],
      ['inspect: `..` out of the root', 'inspect', [`${root}/../outside/model`]],
      ['inspect: a sibling whose name extends the root’s', 'inspect', [path.join(sibling, 'model')]],
      ['inspect: a symlink out of the root', 'inspect', [path.join(root, 'escape')]],
      ['inspect: through a symlink out of the root', 'inspect', [path.join(root, 'escape', 'model')]],
      ['inspect: a symlink then `..`', 'inspect', [`${root}/escape/../outside/model`]],
      ['inspect: the filesystem root', 'inspect', ['/']],
      [
        'previewData: req.model',
        'previewData',
        [{ model: out, source: { builtin: 'demo-calibration' }, window: 64 }],
      ],
      [
        'previewData: req.source.path',
        'previewData',
        [{ model: path.join(root, 'model'), source: { path: path.join(root, 'escape-file') }, window: 64 }],
      ],
      ['estimate: settings.model', 'estimate', [{ ...SETTINGS, model: out }]],
      [
        'estimate: settings.calib.path',
        'estimate',
        [{ ...SETTINGS, model: path.join(root, 'model'), calib: { path: path.join(outside, 'secret.txt') } }],
      ],
      [
        'startJob: settings.eval.path',
        'startJob',
        [{ ...SETTINGS, model: path.join(root, 'model'), eval: { path: path.join(outside, 'secret.txt') } }],
      ],
      ['startJob: settings.model', 'startJob', [{ ...SETTINGS, model: out }]],
      ['exportJob: req.out outside', 'exportJob', [{ jobId: 'job-1', out: path.join(outside, 'export') }]],
      [
        'exportJob: req.out not yet existing, under a symlink out',
        'exportJob',
        [{ jobId: 'job-1', out: path.join(root, 'escape', 'new', 'deeper') }],
      ],
      [
        'exportJob: req.out a dangling symlink to outside',
        'exportJob',
        [{ jobId: 'job-1', out: path.join(root, 'dangling') }],
      ],
      [
        'exportJob: `..` past a missing folder',
        'exportJob',
        [{ jobId: 'job-1', out: `${root}/new/../../x` }],
      ],
      ['browse: a folder outside', 'browse', [outside]],
      ['browse: a symlink out', 'browse', [path.join(root, 'escape')]],
    ];
  };

  it.each(outsideCases().map((c) => [c[0], c]))('refuses %s', async (_name, [, method, params]) => {
    const before = api.calls.length;
    const r = await client.request(method, params);
    expect(r.error).toMatchObject({
      kind: 'bad-input',
      message: expect.stringContaining(`outside the folders this server may use: ${folders.root}`),
    });
    // the message names the path as the caller gave it
    expect(r.error!.file).toBeDefined();
    expect(api.calls.length).toBe(before);
  });

  it('refuses an export that would replace a root', async () => {
    const before = api.calls.length;
    const r = await client.request('exportJob', [{ jobId: 'job-1', out: folders.root }]);
    expect(r.error).toMatchObject({ kind: 'bad-input', file: folders.root });
    expect(api.calls.length).toBe(before);
  });

  it('refuses path fields that are not paths, and unknown built-in texts', async () => {
    const model = path.join(folders.root, 'model');
    for (const settings of [
      { ...SETTINGS, model: 5 },
      { ...SETTINGS, model, calib: { path: 7 } },
      { ...SETTINGS, model, eval: { builtin: '../../etc/passwd' } },
      { ...SETTINGS, model, calib: 'data.txt' },
      { ...SETTINGS, model, calib: null },
    ]) {
      const r = await client.request('startJob', [settings]);
      expect(r.error, JSON.stringify(settings)).toMatchObject({ kind: 'bad-input' });
    }
    expect((await client.request('exportJob', [{ jobId: 'job-1' }])).error).toMatchObject({
      kind: 'bad-input',
    });
  });

  it('accepts paths inside the roots, existing or not, and built-in texts', async () => {
    const { root } = folders;
    const model = path.join(root, 'model');
    const ok = [
      await client.request('inspect', [model]),
      await client.request('inspect', [`${root}/sub/../model`]),
      await client.request('inspect', [root]),
      await client.request('previewData', [
        { model, source: { path: path.join(root, 'data.txt') }, window: 64 },
      ]),
      await client.request('previewData', [{ model, source: { builtin: 'demo-evaluation' }, window: 64 }]),
      await client.request('estimate', [{ ...SETTINGS, model }]),
      await client.request('startJob', [
        { ...SETTINGS, model, calib: { path: path.join(root, 'data.txt') } },
      ]),
      await client.request('exportJob', [
        { jobId: 'job-1', out: path.join(root, 'exports', 'new', 'deeper') },
      ]),
      await client.request('exportJob', [{ jobId: 'job-1', out: path.join(root, 'sub') }]),
    ];
    for (const r of ok) expect(r.error, JSON.stringify(r.error)).toBeUndefined();
    expect(api.calls.at(-2)).toMatchObject({ method: 'exportJob' });
    // the engine is given real paths, never the caller's strings
    expect(
      api.calls.find((c) => c.method === 'inspect' && c.params[0] === `${root}/sub/../model`),
    ).toBeUndefined();
    // an export's parent folders are made by the server, inside the root
    expect(fs.statSync(path.join(root, 'exports', 'new')).isDirectory()).toBe(true);
    fs.rmSync(path.join(root, 'exports'), { recursive: true });
  });
});

describe('invalid arguments (audit #13, item 9)', () => {
  // paths inside the root, so only the shape can be what refuses them
  const model = () => path.join(folders.root, 'model');
  const base = () => ({ ...SETTINGS, model: model() });

  it.each(invalidSettings({ ...SETTINGS, model: '/replaced' }).map((c) => [c[0], c] as const))(
    'refuses startJob and estimate with %s, naming the field, before the engine',
    async (_name, [, settings, field]) => {
      const before = api.calls.length;
      const s = { ...(settings as object), model: model() };
      for (const method of ['startJob', 'estimate']) {
        const r = await client.request(method, [s]);
        expect(r.error, `${method} ${JSON.stringify(s)}`).toMatchObject({
          kind: 'bad-input',
          message: expect.stringMatching(field),
        });
      }
      expect(api.calls.length).toBe(before);
    },
  );

  it.each(INVALID_EXPORT_PATCHES.map((c) => [c[0], c] as const))(
    'refuses exportJob with %s',
    async (_name, [, patch, field]) => {
      const before = api.calls.length;
      const req = { jobId: 'job-1', out: path.join(folders.root, 'exports', 'x'), ...(patch as object) };
      const r = await client.request('exportJob', [req]);
      expect(r.error).toMatchObject({ kind: 'bad-input', message: expect.stringMatching(field) });
      expect(api.calls.length).toBe(before);
    },
  );

  it.each<[string, string, unknown[], RegExp]>([
    [
      'a preview window of 1',
      'previewData',
      [{ model: '', source: { builtin: 'demo-evaluation' }, window: 1 }],
      /req\.window/,
    ],
    ['reallocate with kvFraction 0', 'reallocate', [{ jobId: 'job-1', kvFraction: 0 }], /req\.kvFraction/],
    [
      'reallocate with a negative override rank',
      'reallocate',
      [{ jobId: 'job-1', overrides: [{ layer: 0, kRank: -1, vRank: 2 }] }],
      /req\.overrides\[0\]\.kRank/,
    ],
    ['startTry with topP 2', 'startTry', [{ model: { jobId: 'job-1' }, prompt: 'Hi', topP: 2 }], /req\.topP/],
    ['an empty job id', 'getResult', [''], /\bid\b/],
  ])('refuses %s', async (_name, method, params, field) => {
    const before = api.calls.length;
    const p = params.map((x) =>
      x && typeof x === 'object' && 'model' in x && (x as { model: unknown }).model === ''
        ? { ...x, model: model() }
        : x,
    );
    const r = await client.request(method, p);
    expect(r.error).toMatchObject({ kind: 'bad-input', message: expect.stringMatching(field) });
    expect(api.calls.length).toBe(before);
  });

  it('still passes valid settings through', async () => {
    expect((await client.request('startJob', [base()])).error).toBeUndefined();
  });
});

describe('browse', () => {
  it('lists the roots when given no folder', async () => {
    const r = await client.request('browse', []);
    expect(r.result).toEqual({
      dir: '',
      parent: null,
      entries: [{ name: folders.root, path: folders.root, kind: 'dir' }],
    });
    expect((await client.request('browse', [null])).result).toEqual(r.result);
  });

  it('lists a root: folders first, files with bytes, links out of the root left out', async () => {
    const r = await client.request('browse', [folders.root]);
    expect(r.result).toEqual({
      dir: folders.root,
      parent: null,
      entries: [
        { name: 'model', path: path.join(folders.root, 'model'), kind: 'dir' },
        { name: 'sub', path: path.join(folders.root, 'sub'), kind: 'dir' },
        { name: 'data.txt', path: path.join(folders.root, 'data.txt'), kind: 'file', bytes: 18 },
      ],
    });
  });

  it('gives a sub-folder its parent, and refuses a file', async () => {
    const r = await client.request('browse', [path.join(folders.root, 'sub')]);
    expect(r.result).toMatchObject({
      dir: path.join(folders.root, 'sub'),
      parent: folders.root,
      entries: [{ name: 'inner.txt', kind: 'file', bytes: 5 }],
    });
    const file = await client.request('browse', [path.join(folders.root, 'data.txt')]);
    expect(file.error).toMatchObject({ kind: 'bad-input', message: expect.stringMatching(/not a folder/) });
  });

  it('never asks the engine', () => {
    expect(api.calls.some((c) => c.method === 'browse')).toBe(false);
  });
});

describe('static files', () => {
  const csp = () =>
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
    `connect-src 'self' ws://127.0.0.1:${server.port}; frame-ancestors 'none'; object-src 'none'; base-uri 'none'`;

  it('serves index.html at / with the CSP and nosniff', async () => {
    const r = await httpGet(server.port, '/?token=abc');
    expect(r.status).toBe(200);
    expect(r.body).toBe(INDEX_HTML);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toBe(csp());
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
  });

  it('names the host the page was loaded from in connect-src', async () => {
    const r = await httpGet(server.port, '/', { Host: `localhost:${server.port}` });
    expect(r.status).toBe(200);
    expect(r.headers['content-security-policy']).toContain(
      `connect-src 'self' ws://localhost:${server.port};`,
    );
  });

  it('serves assets with their content types', async () => {
    const cases: [string, string][] = [
      ['/app.js', 'text/javascript; charset=utf-8'],
      ['/style.css', 'text/css; charset=utf-8'],
      ['/assets/data.json', 'application/json; charset=utf-8'],
      ['/index.html', 'text/html; charset=utf-8'],
    ];
    for (const [p, type] of cases) {
      const r = await httpGet(server.port, p);
      expect(r.status, p).toBe(200);
      expect(r.headers['content-type'], p).toBe(type);
      expect(r.headers['content-security-policy'], p).toBe(csp());
    }
    const head = await httpGet(server.port, '/app.js', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('refuses traversal, raw or encoded, and links out of the build', async () => {
    for (const p of [
      '/../package.json',
      '/assets/../../package.json',
      '/%2e%2e/package.json',
      '/%2E%2E/%2e%2e/package.json',
      '/%2e%2e%2fpackage.json',
      '/..%2f..%2fpackage.json',
      '/assets%2f..%2f..%2fpackage.json',
      '/..%5c..%5cpackage.json',
      '/%00',
      '/%E0%A4%A',
      '/leak.txt',
      `/${folders.outside}/secret.txt`,
    ]) {
      const r = await httpGet(server.port, p);
      expect([400, 404], p).toContain(r.status);
      expect(r.body, p).not.toContain('"name": "rankwise"');
      expect(r.body, p).not.toContain(SECRET);
    }
  });

  it('answers unknown files with 404 and other methods with 405', async () => {
    expect((await httpGet(server.port, '/missing.js')).status).toBe(404);
    expect((await httpGet(server.port, '/assets')).status).toBe(404);
    const post = await httpGet(server.port, '/', {}, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('says the renderer is not built when the static folder has no index.html', async () => {
    const bare = await startServer({ api, roots: [folders.root], staticDir: folders.unbuilt });
    try {
      const r = await httpGet(bare.port, '/');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.body).toMatch(/not built yet/);
      expect(r.body).toContain('npm run build');
      expect((await httpGet(bare.port, '/app.js')).status).toBe(404);
    } finally {
      await bare.close();
    }
  });
});

describe('malformed frames', () => {
  const refusals: [string, string | Buffer, number | null, RegExp][] = [
    ['text that is not JSON', '{"id": 1, ', null, /not JSON/],
    ['a JSON array', '[1, "inspect", []]', null, /JSON object/],
    ['a JSON string', '"inspect"', null, /JSON object/],
    ['no id', '{"method": "listJobs", "params": []}', null, /"id"/],
    ['a fractional id', '{"id": 1.5, "method": "listJobs", "params": []}', null, /"id"/],
    ['a negative id', '{"id": -1, "method": "listJobs", "params": []}', null, /"id"/],
    ['an unknown method', '{"id": 101, "method": "deleteEverything", "params": []}', 101, /unknown method/],
    [
      'a prototype key as method',
      '{"id": 102, "method": "constructor", "params": []}',
      102,
      /unknown method/,
    ],
    ['__proto__ as method', '{"id": 103, "method": "__proto__", "params": []}', 103, /unknown method/],
    ['params not an array', '{"id": 104, "method": "listJobs", "params": {}}', 104, /must be an array/],
    ['missing params', '{"id": 105, "method": "listJobs"}', 105, /must be an array/],
    ['too many arguments', '{"id": 106, "method": "listJobs", "params": [1]}', 106, /takes 0 arguments/],
    ['too few arguments', '{"id": 107, "method": "inspect", "params": []}', 107, /takes 1 argument/],
    ['a number for a path', '{"id": 108, "method": "inspect", "params": [5]}', 108, /must be a string/],
    ['null for an object', '{"id": 109, "method": "startJob", "params": [null]}', 109, /must be an object/],
    ['an array for an object', '{"id": 110, "method": "estimate", "params": [[]]}', 110, /must be an object/],
    ['an unknown purpose', '{"id": 111, "method": "choosePath", "params": ["home"]}', 111, /"model"/],
    [
      'a bad subscription id',
      '{"id": 112, "method": "unsubscribe", "params": ["x"]}',
      112,
      /subscription id/,
    ],
    ['browse with two folders', '{"id": 113, "method": "browse", "params": ["/a", "/b"]}', 113, /0 or 1/],
    ['a binary frame', Buffer.from([1, 2, 3]), null, /binary/],
  ];

  it.each(refusals)('answers %s with a bad-input error', async (_name, frame, id, pattern) => {
    const before = api.calls.length;
    client.send(frame);
    const r = await client.waitFor((f) => f.error !== undefined && f.id === id);
    expect(r.error).toMatchObject({ kind: 'bad-input', message: expect.stringMatching(pattern) });
    expect(api.calls.length).toBe(before);
  });

  it('keeps the connection usable afterwards', async () => {
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    expect((await client.request('listJobs')).result).toHaveLength(1);
  });

  it('closes a connection that sends an oversized frame, and keeps serving others', async () => {
    const other = await TestClient.open(wsUrl());
    other.send('x'.repeat(2 << 20));
    expect((await other.closed).code).toBe(1009);
    expect((await client.request('listJobs')).result).toHaveLength(1);
  });
});

describe('closing the server', () => {
  it('closes its sockets, ending their subscriptions', async () => {
    const s = await startServer({ api, roots: [folders.root], staticDir: folders.staticDir });
    const c = await TestClient.open(`ws://127.0.0.1:${s.port}/api?token=${s.token}`);
    const before = api.active();
    await c.request('subscribe', ['endless']);
    expect(api.active()).toBe(before + 1);
    await s.close();
    expect((await c.closed).code).toBe(1001);
    await until(() => api.active() === before);
    await expect(httpGet(s.port, '/')).rejects.toThrow();
  });

  it('reports a port in use as bad input', async () => {
    await expect(
      startServer({ api, port: server.port, roots: [folders.root], staticDir: folders.staticDir }),
    ).rejects.toMatchObject({ kind: 'bad-input', message: expect.stringMatching(/already in use/) });
  });

  it('refuses roots that do not exist or are files', async () => {
    await expect(
      startServer({ api, roots: [path.join(folders.base, 'nope')], staticDir: folders.staticDir }),
    ).rejects.toMatchObject({ kind: 'bad-input' });
    await expect(
      startServer({ api, roots: [path.join(folders.root, 'data.txt')], staticDir: folders.staticDir }),
    ).rejects.toMatchObject({ kind: 'bad-input', message: expect.stringMatching(/not a folder/) });
  });
});
