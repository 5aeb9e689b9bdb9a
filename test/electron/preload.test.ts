import fs from 'node:fs';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

const electron = vi.hoisted(() => {
  type Handler = (event: unknown, ...args: unknown[]) => void;
  const on = new Map<string, Handler[]>();
  return {
    exposed: [] as [string, unknown][],
    on,
    contextBridge: {
      exposeInMainWorld: (key: string, api: unknown) => {
        electron.exposed.push([key, api]);
      },
    },
    ipcRenderer: {
      invoke: undefined as unknown as (channel: string, ...args: unknown[]) => Promise<unknown>,
      on: (channel: string, handler: Handler) => {
        on.set(channel, [...(on.get(channel) ?? []), handler]);
      },
    },
    /** What main would do: deliver a message on a channel to the page's listeners. */
    emit(channel: string, ...args: unknown[]) {
      for (const handler of on.get(channel) ?? []) handler({ sender: 'ipcRenderer' }, ...args);
    },
  };
});

vi.mock('electron', () => ({ contextBridge: electron.contextBridge, ipcRenderer: electron.ipcRenderer }));

import { API_METHODS, type JobEvent, type RankwiseApi } from '../../main/contract/index.ts';

const invoke = vi.fn<(channel: string, ...args: unknown[]) => Promise<unknown>>();
electron.ipcRenderer.invoke = (channel, ...args) => invoke(channel, ...args);

let api: RankwiseApi;

beforeAll(async () => {
  await import('../../electron/preload.ts');
  api = electron.exposed[0][1] as RankwiseApi;
});

beforeEach(() => {
  invoke.mockReset();
  invoke.mockImplementation(async (channel) => ({ ok: true, value: `reply from ${channel}` }));
});

const REQUEST_METHODS = API_METHODS.filter((m) => m !== 'subscribe');

describe('preload', () => {
  it('exposes exactly one key, rankwise, whose keys are exactly API_METHODS', () => {
    expect(electron.exposed).toHaveLength(1);
    expect(electron.exposed[0][0]).toBe('rankwise');
    expect(Object.keys(api).sort()).toEqual([...API_METHODS].sort());
    for (const key of Object.keys(api))
      expect(typeof (api as unknown as Record<string, unknown>)[key]).toBe('function');
  });

  it.each(REQUEST_METHODS)(
    '%s invokes its channel with its arguments and returns the value',
    async (method) => {
      const args = method === 'listJobs' ? [] : [{ marker: method }, 'second'];
      const call = api[method] as (...a: unknown[]) => Promise<unknown>;
      await expect(call(...args)).resolves.toEqual({ ok: true, value: `reply from rankwise:${method}` });
      expect(invoke).toHaveBeenCalledTimes(1);
      expect(invoke).toHaveBeenCalledWith(`rankwise:${method}`, ...args);
    },
  );

  it('passes an error envelope through untouched, so the kind survives the bridge', async () => {
    const info = { kind: 'unsupported-model', message: '/m/config.json: no heads', file: '/m/config.json' };
    invoke.mockResolvedValueOnce({ ok: false, error: info });
    await expect(api.inspect('/m')).resolves.toEqual({ ok: false, error: info });
  });

  it('a refused or failed invoke becomes an internal error envelope, never a throw', async () => {
    invoke.mockRejectedValueOnce(new Error("Error invoking remote method 'rankwise:listJobs': IPC refused"));
    const refused = await api.listJobs();
    expect(refused).toMatchObject({
      ok: false,
      error: { kind: 'internal', message: expect.stringMatching(/IPC refused/) },
    });

    invoke.mockResolvedValueOnce('not an envelope');
    expect(await api.listJobs()).toMatchObject({ ok: false, error: { kind: 'internal' } });
  });

  it('exposes no way to reach ipcRenderer or arbitrary channels', () => {
    const keys = Object.keys(api);
    for (const forbidden of ['invoke', 'send', 'on', 'ipcRenderer', 'sendSync', 'postMessage']) {
      expect(keys).not.toContain(forbidden);
    }
    expect(Object.values(api)).not.toContain(electron.ipcRenderer);
  });

  describe('subscribe', () => {
    const event = (seq: number): JobEvent => ({ type: 'log', jobId: 'job-1', seq, message: `m${seq}` });

    const subscriptionIdOf = (callIndex: number): string => {
      const call = invoke.mock.calls.filter(([channel]) => channel === 'rankwise:subscribe')[callIndex];
      expect(call[1]).toBe('job-1');
      return call[2] as string;
    };

    it('asks main to subscribe under an id it chose, and routes events by that id', () => {
      const first: JobEvent[] = [];
      const second: JobEvent[] = [];
      api.subscribe('job-1', (e) => first.push(e));
      api.subscribe('job-1', (e) => second.push(e));
      const [a, b] = [subscriptionIdOf(0), subscriptionIdOf(1)];
      expect(a).not.toBe(b);
      expect(a).toMatch(/^[A-Za-z0-9_-]{1,64}$/);

      // an event can come before main's reply to subscribe: the id is already known
      electron.emit('rankwise:event', b, event(1));
      electron.emit('rankwise:event', a, event(2));
      electron.emit('rankwise:event', 'someone-else', event(3));
      expect(first).toEqual([event(2)]);
      expect(second).toEqual([event(1)]);
    });

    it('registers a single rankwise:event listener however many subscriptions there are', () => {
      api.subscribe('job-1', () => {});
      api.subscribe('job-1', () => {});
      expect(electron.on.get('rankwise:event')).toHaveLength(1);
      expect([...electron.on.keys()]).toEqual(['rankwise:event']);
    });

    it('unsubscribe stops delivery at once and tells main, once', () => {
      const seen: JobEvent[] = [];
      const unsubscribe = api.subscribe('job-1', (e) => seen.push(e));
      const id = subscriptionIdOf(0);
      unsubscribe();
      unsubscribe();
      electron.emit('rankwise:event', id, event(1));
      expect(seen).toEqual([]);
      const unsubscribes = invoke.mock.calls.filter(([channel]) => channel === 'rankwise:unsubscribe');
      expect(unsubscribes).toEqual([['rankwise:unsubscribe', id]]);
    });

    it('a subscription main refuses delivers nothing', async () => {
      const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
      invoke.mockResolvedValueOnce({ ok: false, error: { kind: 'bad-input', message: 'no job job-1' } });
      const seen: JobEvent[] = [];
      api.subscribe('job-1', (e) => seen.push(e));
      const id = subscriptionIdOf(0);
      await vi.waitFor(() => expect(logged).toHaveBeenCalled());
      electron.emit('rankwise:event', id, event(1));
      expect(seen).toEqual([]);
      logged.mockRestore();
    });
  });

  it('is bundle-able for a sandbox: it reaches electron, channels.ts and the manifest, nothing of Node', () => {
    // every module the preload loads at run time, followed through relative imports
    const root = new URL('../../', import.meta.url);
    const seen = new Set<string>();
    const bare = new Set<string>();
    const visit = (file: URL): void => {
      const rel = file.href.slice(root.href.length);
      if (seen.has(rel)) return;
      seen.add(rel);
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms)) {
        if (m[1].startsWith('.')) visit(new URL(m[1], file));
        else bare.add(m[1]);
      }
    };
    visit(new URL('electron/preload.ts', root));
    expect([...bare]).toEqual(['electron']);
    for (const file of seen) {
      expect(file).toMatch(/^(electron\/(preload|channels)\.ts|main\/(contract|core)\/[a-z-]+\.ts)$/);
    }
    expect(seen).toContain('main/contract/manifest.ts');
  });
});
