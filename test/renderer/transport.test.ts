import { describe, expect, it, vi } from 'vitest';
import type { BridgeApi, JobEvent, RankwiseApi } from '../../main/contract/index.ts';
import { connectApi, stripToken, tokenLocation, type PageEnvironment } from '../../renderer/app/connect.ts';
import { ipcApi } from '../../renderer/transport/ipc.ts';
import { ApiError } from '../../renderer/transport/websocket.ts';
import { CARD } from './fake-api.ts';

function bridge(overrides: Partial<Record<keyof BridgeApi, unknown>> = {}): BridgeApi {
  const ok = <T>(value: T) => Promise.resolve({ ok: true as const, value });
  return {
    inspect: vi.fn(() => ok(CARD)),
    previewData: vi.fn(),
    estimate: vi.fn(),
    startJob: vi.fn(),
    cancelJob: vi.fn(() => ok(undefined)),
    resumeJob: vi.fn(),
    subscribe: vi.fn(() => () => undefined),
    getResult: vi.fn(),
    reallocate: vi.fn(),
    exportJob: vi.fn(),
    getExportReport: vi.fn(),
    listJobs: vi.fn(() => ok([])),
    choosePath: vi.fn(() => ok('/picked')),
    browse: vi.fn(),
    ...overrides,
  } as unknown as BridgeApi;
}

describe('the IPC transport', () => {
  it('unwraps successful envelopes and passes the arguments through', async () => {
    const b = bridge();
    const api = ipcApi(b);
    await expect(api.inspect('/m')).resolves.toEqual(CARD);
    expect(b.inspect).toHaveBeenCalledWith('/m');
    await expect(api.choosePath('export')).resolves.toBe('/picked');
    await expect(api.cancelJob('j')).resolves.toBeUndefined();
  });

  it('throws an ApiError that keeps the engine’s error kind and file', async () => {
    const error = { kind: 'unsupported-model' as const, message: 'no mamba', file: '/m/config.json' };
    const api = ipcApi(bridge({ inspect: vi.fn(() => Promise.resolve({ ok: false, error })) }));
    const thrown = await api.inspect('/m').catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(ApiError);
    expect((thrown as ApiError).kind).toBe('unsupported-model');
    expect((thrown as ApiError).info).toEqual(error);
  });

  it('turns a rejected bridge call or a malformed reply into an internal ApiError', async () => {
    const api = ipcApi(
      bridge({
        listJobs: vi.fn(() => Promise.reject(new Error('no handler'))),
        browse: vi.fn(() => Promise.resolve([])),
      }),
    );
    await expect(api.listJobs()).rejects.toMatchObject({ info: { kind: 'internal', message: 'no handler' } });
    await expect(api.browse()).rejects.toMatchObject({
      info: { kind: 'internal', message: 'browse: malformed reply' },
    });
  });

  it('subscribes through the bridge as it is', () => {
    const unsubscribe = vi.fn();
    const b = bridge({ subscribe: vi.fn(() => unsubscribe) });
    const listener = vi.fn<(e: JobEvent) => void>();
    const off = ipcApi(b).subscribe('job-1', listener);
    expect(b.subscribe).toHaveBeenCalledWith('job-1', listener);
    off();
    expect(unsubscribe).toHaveBeenCalled();
  });
});

function page(search: string, session = new Map<string, string>()): PageEnvironment & { replaced: string[] } {
  const replaced: string[] = [];
  return {
    bridge: undefined,
    location: { protocol: 'http:', host: '127.0.0.1:5173', search, pathname: '/', hash: '#review' },
    history: {
      replaceState: (_d: unknown, _t: string, url?: string | URL | null) => void replaced.push(String(url)),
    },
    session: { getItem: (k) => session.get(k) ?? null, setItem: (k, v) => void session.set(k, v) },
    replaced,
  };
}

describe('choosing the transport', () => {
  it('uses the desktop bridge when the preload put one on the page', async () => {
    const env = { ...page(''), bridge: bridge() };
    const { api, mode } = await connectApi(env);
    expect(mode).toBe('desktop');
    await expect(api.inspect('/m')).resolves.toEqual(CARD);
    expect(env.replaced).toEqual([]);
  });

  it('connects to the page’s own server with the token, then takes the token out of the address bar', async () => {
    const env = page('?token=s3cr%2Bt&lang=en');
    const connect = vi.fn(async () => ({}) as RankwiseApi);
    const { mode } = await connectApi({ ...env, connect });
    expect(mode).toBe('browser');
    expect(connect).toHaveBeenCalledWith('ws://127.0.0.1:5173/api?token=s3cr%2Bt');
    expect(env.replaced).toEqual(['/?lang=en#review']);
  });

  it('reconnects after a reload from the token kept in the session, and fails clearly without one', async () => {
    const session = new Map<string, string>();
    stripToken(page('?token=abc', session));
    expect(tokenLocation(page('', session)).search).toBe('?token=abc');
    const connect = vi.fn(async () => ({}) as RankwiseApi);
    await connectApi({ ...page('', session), connect });
    expect(connect).toHaveBeenCalledWith('ws://127.0.0.1:5173/api?token=abc');
    await expect(connectApi({ ...page(''), connect })).rejects.toThrow(/without its token/);
  });

  it('keeps the token in the address bar when the connection fails, so a reload can try again', async () => {
    const env = page('?token=abc');
    const connect = vi.fn(() =>
      Promise.reject(new ApiError({ kind: 'internal', message: 'could not connect' })),
    );
    await expect(connectApi({ ...env, connect })).rejects.toThrow(/could not connect/);
    expect(env.replaced).toEqual([]);
  });
});
