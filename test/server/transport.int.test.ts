/** The renderer's WebSocket RankwiseApi against the real server, with `ws` standing in for the browser. */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { JobEvent } from '../../main/contract/index.ts';
import { startServer, type RunningServer } from '../../main/server/server.ts';
import { ApiError, connectWebSocketApi, type WebSocketApi } from '../../renderer/transport/websocket.ts';
import { webSocketUrl } from '../../renderer/transport/url.ts';
import { fakeApi, PROGRESS_STEPS, SETTINGS, type FakeApi } from './fake-api.ts';
import { makeFolders } from './fixture.ts';

const folders = makeFolders();
let engine: FakeApi;
let server: RunningServer;
let api: WebSocketApi;

/** The socket URL exactly as the page would derive it from its own address. */
const pageSocketUrl = (s: RunningServer) => {
  const page = new URL(s.url);
  return webSocketUrl({ protocol: page.protocol, host: page.host, search: page.search });
};

beforeAll(async () => {
  engine = fakeApi();
  server = await startServer({ api: engine, roots: [folders.root], staticDir: folders.staticDir });
  api = await connectWebSocketApi(pageSocketUrl(server), WebSocket);
});

afterAll(async () => {
  api?.close();
  await server?.close();
  folders.cleanup();
});

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('connectWebSocketApi', () => {
  it('calls the engine and resolves with its results', async () => {
    const model = path.join(folders.root, 'model');
    expect(await api.inspect(model)).toMatchObject({ dir: model, layers: 2 });
    expect(await api.estimate({ ...SETTINGS, model })).toMatchObject({ fits: true });
    expect(await api.startJob({ ...SETTINGS, model })).toMatchObject({ id: 'job-1', kind: 'compress' });
    expect(await api.listJobs()).toHaveLength(1);
    expect(await api.cancelJob('job-1')).toBeNull();
    expect(await api.choosePath('export')).toBeNull();
  });

  it('runs concurrent calls and matches each answer to its call', async () => {
    const dirs = ['model', 'sub', '.'].map((d) => path.join(folders.root, d));
    const cards = await Promise.all(dirs.map((d) => api.inspect(d)));
    expect(cards.map((c) => c.dir)).toEqual(dirs);
  });

  it('rejects with an ApiError carrying the ErrorInfo', async () => {
    const e = await api.getResult('missing').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toBeInstanceOf(Error);
    expect((e as ApiError).info).toEqual({ kind: 'bad-input', message: 'no job "missing"' });
    expect((e as ApiError).kind).toBe('bad-input');
    expect((e as ApiError).message).toBe('no job "missing"');

    const outside = await api.inspect(path.join(folders.outside, 'model')).catch((x: unknown) => x);
    expect((outside as ApiError).info).toMatchObject({
      kind: 'bad-input',
      message: expect.stringMatching(/outside the folders this server may use/),
    });
    const internal = await api.reallocate({ jobId: 'boom' }).catch((x: unknown) => x);
    expect((internal as ApiError).info).toEqual({ kind: 'internal', message: 'kaboom' });
  });

  it('browses inside the roots, with and without a folder', async () => {
    expect(await api.browse()).toMatchObject({ dir: '', entries: [{ path: folders.root }] });
    expect(await api.browse(undefined)).toMatchObject({ dir: '', entries: [{ path: folders.root }] });
    const listing = await api.browse(folders.root);
    expect(listing.entries.map((e) => e.name)).toEqual(['model', 'sub', 'data.txt']);
  });

  it('delivers a subscription’s events in order, and unsubscribe stops them', async () => {
    const done: JobEvent[] = [];
    api.subscribe('job-3', (e) => done.push(e));
    await until(() => done.some((e) => e.type === 'state' && e.state === 'done'));
    expect(done.map((e) => e.seq)).toEqual(done.map((_, i) => i));
    expect(done).toHaveLength(PROGRESS_STEPS + 2);

    const before = engine.active();
    const endless: JobEvent[] = [];
    const unsubscribe = api.subscribe('endless', (e) => endless.push(e));
    await until(() => endless.length >= 3);
    expect(engine.active()).toBe(before + 1);
    unsubscribe();
    unsubscribe();
    await until(() => engine.active() === before);
    const count = endless.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(endless).toHaveLength(count);
  });

  it('keeps delivering to other listeners when one throws', async () => {
    const seen: JobEvent[] = [];
    const errors: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => errors.push(args);
    try {
      api.subscribe('job-4', () => {
        throw new Error('a broken view');
      });
      api.subscribe('job-4', (e) => seen.push(e));
      await until(() => seen.some((e) => e.type === 'state' && e.state === 'done'));
    } finally {
      console.error = original;
    }
    expect(errors.length).toBeGreaterThan(0);
    expect(await api.listJobs()).toHaveLength(1);
  });

  it('rejects pending calls when the socket closes, and later calls at once', async () => {
    const s = await startServer({ api: engine, roots: [folders.root], staticDir: folders.staticDir });
    const local = await connectWebSocketApi(pageSocketUrl(s), WebSocket);
    const pending = local.getExportReport('hang');
    await new Promise((r) => setTimeout(r, 20));
    await s.close();
    const e = await pending.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).message).toMatch(/connection to the Rankwise server closed \(code 1001/);
    await expect(local.listJobs()).rejects.toBeInstanceOf(ApiError);
    // an unsubscribe after the close is harmless
    local.subscribe('job-1', () => {})();
  });

  it('rejects the connection when the token is wrong', async () => {
    const bad = `ws://127.0.0.1:${server.port}/api?token=wrong`;
    const e = await connectWebSocketApi(bad, WebSocket).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).message).toMatch(/could not connect/);
  });

  it('rejects clearly when there is no WebSocket at all', async () => {
    vi.stubGlobal('WebSocket', undefined);
    try {
      await expect(connectWebSocketApi('ws://127.0.0.1:1/api')).rejects.toThrow(/no WebSocket/);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe('webSocketUrl', () => {
  it('keeps the page’s host and port and carries its token to /api', () => {
    expect(webSocketUrl({ protocol: 'http:', host: '127.0.0.1:5173', search: '?token=abc_-9' })).toBe(
      'ws://127.0.0.1:5173/api?token=abc_-9',
    );
    expect(webSocketUrl({ protocol: 'http:', host: 'localhost:80', search: '?x=1&token=a%2Bb' })).toBe(
      'ws://localhost:80/api?token=a%2Bb',
    );
    expect(webSocketUrl({ protocol: 'https:', host: 'example.test', search: '?token=t' })).toBe(
      'wss://example.test/api?token=t',
    );
  });

  it('says what is wrong when the page has no token or no location', () => {
    expect(() => webSocketUrl({ protocol: 'http:', host: '127.0.0.1:1', search: '' })).toThrow(/token/);
    expect(() => webSocketUrl(undefined)).toThrow(/location/);
  });
});
