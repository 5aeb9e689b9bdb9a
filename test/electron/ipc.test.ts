import { EventEmitter } from 'node:events';
import path from 'node:path';
import { beforeEach, describe, expect, it, vi, type Mock } from 'vitest';

// ipc.ts takes Electron's types only; loading the real module outside Electron would try a download
vi.mock('electron', () => {
  throw new Error('electron/ipc.ts must not load electron at run time');
});

import { registerIpc, type FrameLike, type IpcMainLike, type InvokeEventLike } from '../../electron/ipc.ts';
import { PathRegistry } from '../../electron/path-registry.ts';
import {
  API_METHODS,
  type JobEvent,
  type JobSettings,
  type RankwiseApi,
  type RequestMethod,
} from '../../main/contract/index.ts';
import { RankwiseError, badInput, unsupportedModel } from '../../main/core/errors.ts';
import { INVALID_EXPORT_PATCHES, invalidSettings } from '../api/invalid-cases.ts';

type Listener = (event: InvokeEventLike, ...args: unknown[]) => unknown;

class FakeIpcMain implements IpcMainLike {
  readonly handlers = new Map<string, Listener>();
  handle(channel: string, listener: Listener): void {
    // as Electron does: a second handler for a channel is a programming error
    if (this.handlers.has(channel))
      throw new Error(`Attempted to register a second handler for '${channel}'`);
    this.handlers.set(channel, listener);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  async invoke(channel: string, event: InvokeEventLike, ...args: unknown[]): Promise<unknown> {
    const handler = this.handlers.get(channel);
    if (!handler) throw new Error(`No handler registered for '${channel}'`);
    return await handler(event, ...args);
  }
}

let nextContentsId = 1;

class FakeContents extends EventEmitter {
  readonly id = nextContentsId++;
  readonly mainFrame: FrameLike;
  readonly sent: unknown[][] = [];
  private destroyed = false;

  constructor(url = 'app://rankwise/index.html') {
    super();
    this.mainFrame = { url, parent: null };
  }
  send(channel: string, ...args: unknown[]): void {
    if (this.destroyed) throw new Error('Object has been destroyed');
    this.sent.push([channel, ...args]);
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('destroyed');
  }
  event(frame: FrameLike | null = this.mainFrame): InvokeEventLike {
    return { sender: this, senderFrame: frame };
  }
}

interface FakeSubscription {
  jobId: string;
  listener: (event: JobEvent) => void;
  unsubscribe: Mock<() => void>;
}

function fakeApi() {
  const mocks = {} as Record<(typeof API_METHODS)[number], Mock>;
  const subscriptions: FakeSubscription[] = [];
  for (const method of API_METHODS) {
    mocks[method] = vi.fn(async (...args: unknown[]) => ({ method, args }));
  }
  mocks.subscribe = vi.fn((jobId: string, listener: (event: JobEvent) => void) => {
    const sub = { jobId, listener, unsubscribe: vi.fn() };
    subscriptions.push(sub);
    return sub.unsubscribe;
  });
  return { api: mocks as unknown as RankwiseApi, mocks, subscriptions };
}

const ROOT = path.resolve('/rw-ipc-test');
const MODEL = path.join(ROOT, 'models', 'tiny');
const DATA = path.join(ROOT, 'texts', 'calib.jsonl');
const EXPORTS = path.join(ROOT, 'exports');

const SETTINGS: JobSettings = {
  model: MODEL,
  calib: { path: DATA },
  eval: { builtin: 'demo-evaluation' },
  method: 'eigen',
  budget: 0.1,
};

/** A well-formed call of every request method, its paths inside what the test "picked". */
const VALID_ARGS: Record<RequestMethod, unknown[]> = {
  inspect: [MODEL],
  previewData: [{ model: MODEL, source: { path: DATA }, window: 128 }],
  estimate: [SETTINGS],
  startJob: [SETTINGS],
  cancelJob: ['job-1'],
  resumeJob: ['job-1'],
  getResult: ['job-1'],
  reallocate: [{ jobId: 'job-1', budget: 0.2, overrides: [{ layer: 0, kRank: 4, vRank: 4 }] }],
  exportJob: [{ jobId: 'job-1', out: path.join(EXPORTS, 'tiny-kv'), force: false }],
  getExportReport: ['job-2'],
  listJobs: [],
  listModels: [],
  startTry: [{ model: { jobId: 'job-1' }, compare: { dir: MODEL }, prompt: 'Once upon a time' }],
  getTryResult: ['job-3'],
  choosePath: ['model'],
  browse: [path.join(MODEL, 'onnx')],
};
const REQUEST_METHODS = Object.keys(VALID_ARGS) as RequestMethod[];

const JOB_EVENT: JobEvent = { type: 'state', jobId: 'job-1', seq: 0, state: 'running' };

describe('registerIpc', () => {
  let ipc: FakeIpcMain;
  let fake: ReturnType<typeof fakeApi>;
  let paths: PathRegistry;
  let windows: FakeContents[];
  let win: FakeContents;
  let dispose: () => void;

  beforeEach(() => {
    ipc = new FakeIpcMain();
    fake = fakeApi();
    paths = new PathRegistry();
    paths.add(MODEL, 'model');
    paths.add(DATA, 'data');
    paths.add(EXPORTS, 'export');
    win = new FakeContents();
    windows = [win];
    dispose = registerIpc(ipc, fake.api, { allowedOrigin: 'app://rankwise', paths, windows: () => windows });
  });

  const apiCalls = (): number => Object.values(fake.mocks).reduce((n, mock) => n + mock.mock.calls.length, 0);

  it('registers one handler per request method of API_METHODS, plus subscribe and unsubscribe', () => {
    const expected = API_METHODS.filter((m) => m !== 'subscribe').map((m) => `rankwise:${m}`);
    expect([...ipc.handlers.keys()].sort()).toEqual(
      [...expected, 'rankwise:subscribe', 'rankwise:unsubscribe'].sort(),
    );
    expect(REQUEST_METHODS.sort()).toEqual(API_METHODS.filter((m) => m !== 'subscribe').sort());
  });

  it.each(REQUEST_METHODS)('%s reaches the api with the arguments it was given', async (method) => {
    const args = VALID_ARGS[method];
    const reply = await ipc.invoke(`rankwise:${method}`, win.event(), ...args);
    expect(reply).toEqual({ ok: true, value: { method, args } });
    expect(fake.mocks[method]).toHaveBeenCalledTimes(1);
    expect(fake.mocks[method]).toHaveBeenCalledWith(...args);
    expect(apiCalls()).toBe(1);
  });

  describe('refuses senders that are not the app page, without calling the api', () => {
    const channels = [
      ...REQUEST_METHODS.map((m) => [`rankwise:${m}`, VALID_ARGS[m]] as const),
      ['rankwise:subscribe', ['job-1', 'sub-1']] as const,
      ['rankwise:unsubscribe', ['sub-1']] as const,
    ];

    const senders: [string, () => InvokeEventLike][] = [
      [
        'a page from another origin',
        () => {
          const evil = new FakeContents('https://evil.example/index.html');
          windows.push(evil);
          return evil.event();
        },
      ],
      [
        'a file:// page',
        () => {
          const local = new FakeContents('file:///tmp/index.html');
          windows.push(local);
          return local.event();
        },
      ],
      [
        'the app scheme with another host',
        () => {
          const other = new FakeContents('app://rankwise.evil/index.html');
          windows.push(other);
          return other.event();
        },
      ],
      [
        'a subframe of the app window',
        () => win.event({ url: 'app://rankwise/frame.html', parent: win.mainFrame }),
      ],
      [
        'a frame that is not the window main frame',
        () => win.event({ url: 'app://rankwise/index.html', parent: null }),
      ],
      ['an event with no sender frame', () => win.event(null)],
      ['a webContents that is not one of the app windows', () => new FakeContents().event()],
      ['a frame whose URL does not parse', () => win.event({ url: 'not a url', parent: null })],
    ];

    it.each(senders)('%s', async (_name, makeEvent) => {
      for (const [channel, args] of channels) {
        await expect(ipc.invoke(channel, makeEvent(), ...args), channel).rejects.toThrow(/IPC refused/);
      }
      expect(apiCalls()).toBe(0);
    });
  });

  describe('errors come back as ErrorInfo in the envelope', () => {
    it.each([
      [
        'bad-input',
        badInput('window must be positive'),
        { kind: 'bad-input', message: 'window must be positive' },
      ],
      [
        'unsupported-model with its file',
        unsupportedModel('no attention heads', '/m/config.json'),
        { kind: 'unsupported-model', message: '/m/config.json: no attention heads', file: '/m/config.json' },
      ],
      [
        'cancelled',
        new RankwiseError('cancelled', 'job cancelled'),
        { kind: 'cancelled', message: 'job cancelled' },
      ],
      ['a plain Error as internal', new Error('boom'), { kind: 'internal', message: 'boom' }],
    ])('%s', async (_name, thrown, info) => {
      fake.mocks.getResult.mockRejectedValueOnce(thrown);
      expect(await ipc.invoke('rankwise:getResult', win.event(), 'job-1')).toEqual({
        ok: false,
        error: info,
      });
    });

    it('a synchronous throw in the api is caught as well', async () => {
      fake.mocks.listJobs.mockImplementationOnce(() => {
        throw badInput('no job folder');
      });
      expect(await ipc.invoke('rankwise:listJobs', win.event())).toEqual({
        ok: false,
        error: { kind: 'bad-input', message: 'no job folder' },
      });
    });
  });

  describe('malformed payloads are refused as bad input before the api sees them', () => {
    it.each<[string, RequestMethod, unknown[]]>([
      ['no argument', 'inspect', []],
      ['a number for a path', 'inspect', [42]],
      ['an extra argument', 'inspect', [MODEL, 'more']],
      ['an empty job id', 'cancelJob', ['']],
      ['a job id that is not a string', 'getResult', [{ id: 'job-1' }]],
      ['settings that are a string', 'startJob', ['eigen']],
      ['settings without data sources', 'startJob', [{ model: MODEL, method: 'eigen' }]],
      ['settings without a method', 'estimate', [{ ...SETTINGS, method: undefined }]],
      ['an unknown built-in text', 'startJob', [{ ...SETTINGS, calib: { builtin: 'etc-passwd' } }]],
      ['a preview without a window', 'previewData', [{ model: MODEL, source: { path: DATA } }]],
      ['an export without a destination', 'exportJob', [{ jobId: 'job-1' }]],
      ['force that is not a boolean', 'exportJob', [{ jobId: 'job-1', out: EXPORTS, force: 'yes' }]],
      ['a reallocation without a job', 'reallocate', [{ budget: 0.1 }]],
      ['an unknown dialog purpose', 'choosePath', ['home']],
      ['an argument to listJobs', 'listJobs', ['all']],
      ['a number as a folder', 'browse', [5]],
    ])('%s (%s)', async (_name, method, args) => {
      const reply = (await ipc.invoke(`rankwise:${method}`, win.event(), ...args)) as {
        ok: boolean;
        error: { kind: string };
      };
      expect(reply.ok).toBe(false);
      expect(reply.error.kind).toBe('bad-input');
      expect(apiCalls()).toBe(0);
    });

    it.each(invalidSettings(SETTINGS).map((c) => [c[0], c] as const))(
      'startJob and estimate with %s (audit #13, item 9), naming the field',
      async (_name, [, settings, field]) => {
        for (const method of ['startJob', 'estimate']) {
          const reply = (await ipc.invoke(`rankwise:${method}`, win.event(), settings)) as {
            ok: boolean;
            error: { kind: string; message: string };
          };
          expect(reply.ok, method).toBe(false);
          expect(reply.error).toMatchObject({ kind: 'bad-input', message: expect.stringMatching(field) });
        }
        expect(apiCalls()).toBe(0);
      },
    );

    it.each(INVALID_EXPORT_PATCHES.map((c) => [c[0], c] as const))(
      'exportJob with %s, naming the field',
      async (_name, [, patch, field]) => {
        const req = { jobId: 'job-1', out: path.join(EXPORTS, 'tiny-kv'), ...(patch as object) };
        const reply = (await ipc.invoke('rankwise:exportJob', win.event(), req)) as {
          ok: boolean;
          error: { kind: string; message: string };
        };
        expect(reply.ok).toBe(false);
        expect(reply.error).toMatchObject({ kind: 'bad-input', message: expect.stringMatching(field) });
        expect(apiCalls()).toBe(0);
      },
    );

    it.each<[string, RequestMethod, unknown[], RegExp]>([
      [
        'a preview window of 1',
        'previewData',
        [{ model: MODEL, source: { path: DATA }, window: 1 }],
        /req\.window/,
      ],
      [
        'reallocate with kvFraction 1.5',
        'reallocate',
        [{ jobId: 'job-1', kvFraction: 1.5 }],
        /req\.kvFraction/,
      ],
      [
        'reallocate with a fractional override layer',
        'reallocate',
        [{ jobId: 'job-1', overrides: [{ layer: 0.5, kRank: 1, vRank: 2 }] }],
        /req\.overrides\[0\]\.layer/,
      ],
      [
        'startTry with an empty prompt',
        'startTry',
        [{ model: { dir: MODEL }, prompt: ' ' }],
        /prompt is empty/,
      ],
      [
        'a path beside a built-in name',
        'startJob',
        [{ ...SETTINGS, eval: { builtin: 'demo-evaluation', path: '/etc/passwd' } }],
        /settings\.eval/,
      ],
    ])('%s, naming the field', async (_name, method, args, field) => {
      const reply = (await ipc.invoke(`rankwise:${method}`, win.event(), ...args)) as {
        ok: boolean;
        error: { kind: string; message: string };
      };
      expect(reply.ok).toBe(false);
      expect(reply.error).toMatchObject({ kind: 'bad-input', message: expect.stringMatching(field) });
      expect(apiCalls()).toBe(0);
    });

    it('a trailing undefined (browse(undefined)) counts as no argument', async () => {
      expect(await ipc.invoke('rankwise:browse', win.event(), undefined)).toMatchObject({ ok: true });
    });
  });

  describe('paths must have been chosen in a dialog', () => {
    it.each<[string, RequestMethod, unknown[]]>([
      ['a model folder nobody picked', 'inspect', [path.join(ROOT, 'elsewhere')]],
      ['a relative path', 'inspect', ['models/tiny']],
      ['a way out of a picked folder', 'inspect', [`${MODEL}${path.sep}..${path.sep}..${path.sep}secret`]],
      ['a sibling sharing the picked name as prefix', 'inspect', [`${MODEL}-evil`]],
      [
        'a file beside the picked data file',
        'previewData',
        [{ model: MODEL, source: { path: `${DATA}.bak` }, window: 8 }],
      ],
      ['a calibration text nobody picked', 'startJob', [{ ...SETTINGS, calib: { path: '/etc/passwd' } }]],
      ['an evaluation text nobody picked', 'estimate', [{ ...SETTINGS, eval: { path: '/etc/passwd' } }]],
      [
        'an export into the model folder (picked for reading)',
        'exportJob',
        [{ jobId: 'j', out: path.join(MODEL, 'out') }],
      ],
      ['an export anywhere else', 'exportJob', [{ jobId: 'j', out: path.join(ROOT, 'tmp') }]],
      ['browsing outside the picked folders', 'browse', [ROOT]],
    ])('refuses %s', async (_name, method, args) => {
      const reply = (await ipc.invoke(`rankwise:${method}`, win.event(), ...args)) as {
        ok: boolean;
        error: { kind: string; message: string };
      };
      expect(reply.ok).toBe(false);
      expect(reply.error.kind).toBe('bad-input');
      expect(reply.error.message).toMatch(/chosen/);
      expect(apiCalls()).toBe(0);
    });

    it('accepts paths inside a picked folder and the picked data file itself', async () => {
      const inside = path.join(MODEL, 'snapshots', 'abc');
      expect(await ipc.invoke('rankwise:inspect', win.event(), inside)).toMatchObject({ ok: true });
      const export2 = { jobId: 'job-1', out: EXPORTS };
      expect(await ipc.invoke('rankwise:exportJob', win.event(), export2)).toMatchObject({ ok: true });
      const preview = { model: MODEL, source: { path: DATA }, window: 8 };
      expect(await ipc.invoke('rankwise:previewData', win.event(), preview)).toMatchObject({ ok: true });
    });

    it('a path picked later is accepted from then on', async () => {
      const other = path.join(ROOT, 'other-model');
      expect(await ipc.invoke('rankwise:inspect', win.event(), other)).toMatchObject({ ok: false });
      paths.add(other, 'model');
      expect(await ipc.invoke('rankwise:inspect', win.event(), other)).toMatchObject({ ok: true });
    });
  });

  describe('subscriptions', () => {
    it('routes each job event to the page that subscribed, under its subscription id', async () => {
      const other = new FakeContents();
      windows.push(other);
      expect(await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', 'a-1')).toEqual({
        ok: true,
        value: 'a-1',
      });
      expect(await ipc.invoke('rankwise:subscribe', other.event(), 'job-2', 'b-1')).toMatchObject({
        ok: true,
      });
      expect(fake.subscriptions.map((s) => s.jobId)).toEqual(['job-1', 'job-2']);

      fake.subscriptions[0].listener(JOB_EVENT);
      const second: JobEvent = { type: 'log', jobId: 'job-2', seq: 3, message: 'layer 2' };
      fake.subscriptions[1].listener(second);

      expect(win.sent).toEqual([['rankwise:event', 'a-1', JOB_EVENT]]);
      expect(other.sent).toEqual([['rankwise:event', 'b-1', second]]);
    });

    it('delivers events the engine sends while subscribe is still running', async () => {
      fake.mocks.subscribe.mockImplementationOnce((jobId: string, listener: (e: JobEvent) => void) => {
        listener({ ...JOB_EVENT, jobId });
        return vi.fn();
      });
      await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', 'now-1');
      expect(win.sent).toEqual([['rankwise:event', 'now-1', JOB_EVENT]]);
    });

    it('unsubscribe ends the engine subscription and stops the events', async () => {
      await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', 's-1');
      const sub = fake.subscriptions[0];
      expect(await ipc.invoke('rankwise:unsubscribe', win.event(), 's-1')).toEqual({
        ok: true,
        value: undefined,
      });
      expect(sub.unsubscribe).toHaveBeenCalledTimes(1);
      sub.listener(JOB_EVENT);
      expect(win.sent).toEqual([]);
      // a second unsubscribe is harmless and ends nothing twice
      expect(await ipc.invoke('rankwise:unsubscribe', win.event(), 's-1')).toMatchObject({ ok: true });
      expect(sub.unsubscribe).toHaveBeenCalledTimes(1);
    });

    it('one page cannot end another page subscription', async () => {
      const other = new FakeContents();
      windows.push(other);
      await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', 's-1');
      await ipc.invoke('rankwise:unsubscribe', other.event(), 's-1');
      expect(fake.subscriptions[0].unsubscribe).not.toHaveBeenCalled();
      fake.subscriptions[0].listener(JOB_EVENT);
      expect(win.sent).toHaveLength(1);
    });

    it('a destroyed webContents loses all of its subscriptions, and only those', async () => {
      const other = new FakeContents();
      windows.push(other);
      await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', 's-1');
      await ipc.invoke('rankwise:subscribe', win.event(), 'job-2', 's-2');
      await ipc.invoke('rankwise:subscribe', other.event(), 'job-1', 's-1');
      win.destroy();
      expect(fake.subscriptions[0].unsubscribe).toHaveBeenCalledTimes(1);
      expect(fake.subscriptions[1].unsubscribe).toHaveBeenCalledTimes(1);
      expect(fake.subscriptions[2].unsubscribe).not.toHaveBeenCalled();
      // an event racing the teardown is dropped rather than sent to a dead page
      expect(() => fake.subscriptions[0].listener(JOB_EVENT)).not.toThrow();
      fake.subscriptions[2].listener(JOB_EVENT);
      expect(other.sent).toEqual([['rankwise:event', 's-1', JOB_EVENT]]);
    });

    it('a navigation (reload) ends the old page subscriptions and frees their ids', async () => {
      await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', 's-1');
      win.emit('did-navigate');
      expect(fake.subscriptions[0].unsubscribe).toHaveBeenCalledTimes(1);
      expect(await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', 's-1')).toMatchObject({ ok: true });
      expect(win.listenerCount('destroyed')).toBe(1);
      expect(win.listenerCount('did-navigate')).toBe(1);
    });

    it('refuses a reused or malformed subscription id', async () => {
      await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', 's-1');
      for (const id of ['s-1', '', 'has space', 'x'.repeat(65), 7]) {
        expect(await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', id)).toMatchObject({
          ok: false,
          error: { kind: 'bad-input' },
        });
      }
      expect(await ipc.invoke('rankwise:subscribe', win.event(), 'job-1')).toMatchObject({ ok: false });
      expect(fake.mocks.subscribe).toHaveBeenCalledTimes(1);
    });

    it('an engine that refuses the subscription answers with its error, and the id stays free', async () => {
      fake.mocks.subscribe.mockImplementationOnce(() => {
        throw badInput('no job job-9');
      });
      expect(await ipc.invoke('rankwise:subscribe', win.event(), 'job-9', 's-1')).toEqual({
        ok: false,
        error: { kind: 'bad-input', message: 'no job job-9' },
      });
      expect(await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', 's-1')).toMatchObject({ ok: true });
    });
  });

  it('the returned function removes every handler and ends every subscription', async () => {
    await ipc.invoke('rankwise:subscribe', win.event(), 'job-1', 's-1');
    dispose();
    expect(ipc.handlers.size).toBe(0);
    expect(fake.subscriptions[0].unsubscribe).toHaveBeenCalledTimes(1);
    expect(win.listenerCount('destroyed')).toBe(0);
  });

  it('refuses to start with an allowed origin that is not one', () => {
    const opts = { allowedOrigin: 'rankwise', paths, windows: () => windows };
    expect(() => registerIpc(new FakeIpcMain(), fake.api, opts)).toThrow(/not an origin/);
  });
});
