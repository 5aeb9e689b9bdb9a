/**
 * The manifest (main/contract/manifest.ts) is the single source of the API: every method it lists is
 * dispatched by the browser-mode server, has an IPC handler and a preload function on the desktop, and is
 * a function of both renderer transports; and on every face (the engine API itself, the server, the IPC
 * handlers) an invalid argument of every method is refused as a typed bad-input error before any engine
 * code runs. The tables below are keyed by ApiMethod, so a method added to the manifest without its cases
 * here fails to compile.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi, type Mock } from 'vitest';
import WebSocket from 'ws';

const electron = vi.hoisted(() => ({
  exposed: new Map<string, unknown>(),
  invoke: (_channel: string, ..._args: unknown[]): Promise<unknown> => Promise.reject(new Error('unwired')),
  listeners: new Map<string, ((event: unknown, ...args: unknown[]) => void)[]>(),
}));
vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (key: string, api: unknown) => electron.exposed.set(key, api) },
  ipcRenderer: {
    invoke: (channel: string, ...args: unknown[]) => electron.invoke(channel, ...args),
    on: (channel: string, listener: (event: unknown, ...args: unknown[]) => void) =>
      electron.listeners.set(channel, [...(electron.listeners.get(channel) ?? []), listener]),
  },
}));

import { channelOf, EVENT_CHANNEL, SUBSCRIBE_CHANNEL, UNSUBSCRIBE_CHANNEL } from '../../electron/channels.ts';
import { registerIpc, type FrameLike, type IpcMainLike, type InvokeEventLike } from '../../electron/ipc.ts';
import { PathRegistry } from '../../electron/path-registry.ts';
import { createEngineApi } from '../../main/api/engine-api.ts';
import {
  API_METHODS,
  HOST_METHODS,
  MANIFEST,
  REQUEST_METHODS,
  type ApiMethod,
  type BridgeApi,
  type JobEvent,
  type JobSettings,
  type RankwiseApi,
} from '../../main/contract/index.ts';
import { RankwiseError } from '../../main/core/errors.ts';
import { startServer, type RunningServer } from '../../main/server/server.ts';
import { ipcApi } from '../../renderer/transport/ipc.ts';
import { ApiError, connectWebSocketApi, type WebSocketApi } from '../../renderer/transport/websocket.ts';
import { TestClient } from '../server/client.ts';
import { fakeApi, type FakeApi } from '../server/fake-api.ts';
import { makeFolders } from '../server/fixture.ts';
import { tempDir } from '../helpers/paths.ts';

const folders = makeFolders();
const MODEL = path.join(folders.root, 'model');
const DATA = path.join(folders.root, 'data.txt');
const EXPORTS = path.join(folders.root, 'exports');

const SETTINGS: JobSettings = {
  model: MODEL,
  calib: { path: DATA },
  eval: { builtin: 'demo-evaluation' },
  method: 'kqsvd',
  budget: 0.05,
};

/** A well-formed call of every method, its paths inside what each host grants. */
const VALID: Record<ApiMethod, unknown[]> = {
  inspect: [MODEL],
  previewData: [{ model: MODEL, source: { path: DATA }, window: 8 }],
  estimate: [SETTINGS],
  startJob: [SETTINGS],
  cancelJob: ['job-1'],
  resumeJob: ['job-1'],
  subscribe: ['job-1'],
  getResult: ['job-1'],
  reallocate: [{ jobId: 'job-1', budget: 0.1 }],
  exportJob: [{ jobId: 'job-1', out: path.join(EXPORTS, 'tiny') }],
  getExportReport: ['job-2'],
  listJobs: [],
  listModels: [],
  startTry: [{ model: { dir: MODEL }, prompt: 'Once upon a time' }],
  getTryResult: ['job-3'],
  choosePath: ['model'],
  browse: [MODEL],
};

/** One invalid call of every method, and what the refusal must name. */
const INVALID: Record<ApiMethod, [args: unknown[], refusal: RegExp]> = {
  inspect: [[42], /^modelDir must be a string/],
  previewData: [[{ model: MODEL, source: { path: DATA }, window: 1 }], /^req\.window must be/],
  estimate: [[{ ...SETTINGS, budget: -1 }], /^settings\.budget must be a positive number/],
  startJob: [[{ ...SETTINGS, method: 'foo' }], /^settings\.method must be one of/],
  cancelJob: [[''], /^id must be a string: a job id/],
  resumeJob: [['../x'], /^id must be a string: a job id/],
  subscribe: [[7], /^id must be a string: a job id/],
  getResult: [[{ id: 'job-1' }], /^id must be a string: a job id/],
  reallocate: [
    [{ jobId: 'job-1', budget: 0.1, kvFraction: 0.5 }],
    /^give at most one of req\.budget, req\.kvFraction and req\.maxPplIncrease/,
  ],
  exportJob: [
    [{ jobId: 'job-1', out: path.join(EXPORTS, 'tiny'), force: 'yes' }],
    /^req\.force must be true or false/,
  ],
  getExportReport: [[null], /^id must be a string: a job id/],
  listJobs: [['all'], /^listJobs takes 0 arguments, got 1/],
  listModels: [['~/.cache'], /^listModels takes 0 arguments, got 1/],
  startTry: [[{ model: { dir: MODEL }, prompt: ' ' }], /^req\.prompt: the prompt is empty/],
  getTryResult: [['a b'], /^id must be a string: a job id/],
  choosePath: [['home'], /^purpose must be one of "model", "data", "export"/],
  browse: [[5], /^dir must be a string \(a path/],
};

const CASES = API_METHODS.map((m) => [m] as const);
const REQUEST_CASES = REQUEST_METHODS.map((m) => [m] as const);

afterAll(() => folders.cleanup());

describe('the manifest', () => {
  it('lists every method once, subscribe as the only subscription, choosePath and browse as host-answered', () => {
    expect(new Set(API_METHODS).size).toBe(API_METHODS.length);
    expect(API_METHODS.filter((m) => MANIFEST[m].delivery === 'subscribe')).toEqual(['subscribe']);
    expect([...REQUEST_METHODS, 'subscribe'].sort()).toEqual([...API_METHODS].sort());
    expect([...HOST_METHODS].sort()).toEqual(['browse', 'choosePath']);
    for (const m of API_METHODS) {
      expect(MANIFEST[m].doc.length, m).toBeGreaterThan(0);
      expect(MANIFEST[m].result.name.length, m).toBeGreaterThan(0);
    }
  });
});

describe('the engine API refuses each method’s invalid argument', () => {
  const tmp = tempDir('rankwise-manifest-');
  let engine: ReturnType<typeof createEngineApi>;
  beforeAll(() => {
    engine = createEngineApi({ dir: tmp.dir });
  });
  afterAll(async () => {
    await engine?.close();
    tmp.cleanup();
  });

  it('has every method of the manifest', () => {
    for (const m of API_METHODS) expect(typeof engine[m], m).toBe('function');
  });

  it.each(CASES)('%s', async (method) => {
    const [args, names] = INVALID[method];
    const call = engine[method] as (...a: unknown[]) => unknown;
    let error: unknown;
    try {
      await (method === 'subscribe' ? call.call(engine, ...args, () => {}) : call.apply(engine, args));
    } catch (e) {
      error = e;
    }
    expect(error, method).toBeInstanceOf(RankwiseError);
    expect((error as RankwiseError).kind).toBe('bad-input');
    expect((error as Error).message).toMatch(names);
    expect(await engine.listJobs()).toEqual([]);
  });
});

describe('the browser-mode server and the WebSocket transport', () => {
  let fake: FakeApi;
  let server: RunningServer;
  let client: TestClient;
  let socketApi: WebSocketApi;

  beforeAll(async () => {
    fake = fakeApi();
    server = await startServer({ api: fake, roots: [folders.root], staticDir: folders.staticDir });
    const socketUrl = server.url.replace('http://', 'ws://').replace('/?token=', '/api?token=');
    client = await TestClient.open(socketUrl);
    socketApi = await connectWebSocketApi(socketUrl, WebSocket);
  });
  afterAll(async () => {
    socketApi?.close();
    await client?.close();
    await server?.close();
  });

  it.each(CASES)('dispatches %s, to the engine unless the host answers it', async (method) => {
    const before = fake.calls.length;
    const reply = await client.request(method, VALID[method]);
    expect(reply.error, method).toBeUndefined();
    const reached = fake.calls.slice(before).map((c) => c.method);
    expect(reached).toEqual(MANIFEST[method].host ? [] : [method]);
  });

  it.each(CASES)('refuses an invalid %s as bad input, before the engine', async (method) => {
    const [args, names] = INVALID[method];
    const before = fake.calls.length;
    const reply = await client.request(method, args);
    expect(reply.error).toMatchObject({ kind: 'bad-input', message: expect.stringMatching(names) });
    expect(fake.calls.length).toBe(before);
  });

  it('the transport has a function for every method of the manifest', () => {
    for (const m of API_METHODS) expect(typeof socketApi[m], m).toBe('function');
  });

  it.each(REQUEST_CASES)(
    'the transport’s %s reaches the server, and its refusal is an ApiError',
    async (m) => {
      const call = socketApi[m] as (...a: unknown[]) => Promise<unknown>;
      await expect(call(...VALID[m])).resolves.not.toBeInstanceOf(Error);
      const [args, names] = INVALID[m];
      const refused = await call(...args).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ApiError);
      expect((refused as ApiError).kind).toBe('bad-input');
      expect((refused as ApiError).message).toMatch(names);
    },
  );

  it('the transport’s subscribe delivers the job’s events', async () => {
    const seen: JobEvent[] = [];
    const stop = socketApi.subscribe('job-1', (e) => seen.push(e));
    await vi.waitFor(() => expect(seen.some((e) => e.type === 'state' && e.state === 'done')).toBe(true));
    stop();
  });
});

// --- the desktop: main's IPC handlers, the preload, and the renderer's IPC transport, wired together ----

type Listener = (event: InvokeEventLike, ...args: unknown[]) => unknown;

class FakeIpcMain implements IpcMainLike {
  readonly handlers = new Map<string, Listener>();
  handle(channel: string, listener: Listener): void {
    if (this.handlers.has(channel)) throw new Error(`a second handler for '${channel}'`);
    this.handlers.set(channel, listener);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
}

class FakeContents extends EventEmitter {
  readonly id = 1;
  readonly mainFrame: FrameLike = { url: 'app://rankwise/index.html', parent: null };
  send(channel: string, ...args: unknown[]): void {
    for (const listener of electron.listeners.get(channel) ?? []) listener({}, ...args);
  }
  isDestroyed(): boolean {
    return false;
  }
}

describe('the desktop: IPC handlers, preload and the IPC transport', () => {
  const ipc = new FakeIpcMain();
  const win = new FakeContents();
  const mocks = {} as Record<ApiMethod, Mock>;
  let dispose: () => void;
  let bridge: BridgeApi;
  let desktop: RankwiseApi;

  const calls = () => Object.values(mocks).reduce((n, m) => n + m.mock.calls.length, 0);
  const invoke = async (channel: string, ...args: unknown[]) => {
    const handler = ipc.handlers.get(channel);
    if (!handler) throw new Error(`no handler for ${channel}`);
    return handler({ sender: win, senderFrame: win.mainFrame }, ...args);
  };

  beforeAll(async () => {
    for (const m of API_METHODS) mocks[m] = vi.fn(async () => ({ method: m }));
    mocks.subscribe = vi.fn((_id: string, listener: (e: JobEvent) => void) => {
      listener({ type: 'state', jobId: 'job-1', seq: 0, state: 'running' });
      return () => {};
    });
    const paths = new PathRegistry();
    paths.add(MODEL, 'model');
    paths.add(DATA, 'data');
    paths.add(EXPORTS, 'export');
    dispose = registerIpc(ipc, mocks as unknown as RankwiseApi, {
      allowedOrigin: 'app://rankwise',
      paths,
      windows: () => [win],
    });
    electron.invoke = invoke;
    await import('../../electron/preload.ts');
    bridge = electron.exposed.get('rankwise') as BridgeApi;
    desktop = ipcApi(bridge);
  });
  afterAll(() => dispose?.());

  it('main handles a channel per request method, plus subscribe and unsubscribe, and nothing else', () => {
    expect([...ipc.handlers.keys()].sort()).toEqual(
      [...REQUEST_METHODS.map(channelOf), SUBSCRIBE_CHANNEL, UNSUBSCRIBE_CHANNEL].sort(),
    );
  });

  it('the preload exposes exactly the manifest’s methods, and so does the IPC transport', () => {
    expect(Object.keys(bridge).sort()).toEqual([...API_METHODS].sort());
    for (const m of API_METHODS) expect(typeof desktop[m], m).toBe('function');
  });

  it.each(REQUEST_CASES)(
    '%s goes from the transport through the preload and main to the engine',
    async (m) => {
      mocks[m].mockClear();
      const call = desktop[m] as (...a: unknown[]) => Promise<unknown>;
      await expect(call(...VALID[m])).resolves.toEqual({ method: m });
      expect(mocks[m]).toHaveBeenCalledTimes(1);
    },
  );

  it.each(CASES)('main refuses an invalid %s as bad input, before the engine', async (method) => {
    const [args, names] = INVALID[method];
    const before = calls();
    const reply =
      method === 'subscribe'
        ? await invoke(SUBSCRIBE_CHANNEL, ...args, 'sub-invalid')
        : await invoke(channelOf(method), ...args);
    expect(reply).toMatchObject({
      ok: false,
      error: { kind: 'bad-input', message: expect.stringMatching(names) },
    });
    expect(calls()).toBe(before);
  });

  it.each(REQUEST_CASES)('the IPC transport turns main’s refusal of %s into an ApiError', async (m) => {
    const [args] = INVALID[m];
    const call = desktop[m] as (...a: unknown[]) => Promise<unknown>;
    const refused = await call(...args).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).kind).toBe('bad-input');
  });

  it('subscribe goes through as well, and its events come back', async () => {
    const seen: JobEvent[] = [];
    desktop.subscribe('job-1', (e) => seen.push(e));
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    expect(mocks.subscribe).toHaveBeenCalledWith('job-1', expect.any(Function));
    expect(electron.listeners.get(EVENT_CHANNEL)).toHaveLength(1);
  });
});
