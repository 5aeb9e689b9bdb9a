import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

const fx = await vi.hoisted(async () => {
  const { EventEmitter } = await import('node:events');
  const order: string[] = [];

  class FakeWebContents extends EventEmitter {
    static nextId = 1;
    readonly id = FakeWebContents.nextId++;
    readonly mainFrame = { url: 'app://rankwise/index.html', parent: null };
    windowOpenHandler: ((details: { url: string }) => { action: string }) | null = null;
    readonly sent: unknown[][] = [];
    setWindowOpenHandler(handler: (details: { url: string }) => { action: string }): void {
      this.windowOpenHandler = handler;
    }
    send(...args: unknown[]): void {
      this.sent.push(args);
    }
    isDestroyed(): boolean {
      return false;
    }
  }

  class FakeBrowserWindow extends EventEmitter {
    static instances: FakeBrowserWindow[] = [];
    static focused: FakeBrowserWindow | null = null;
    static getAllWindows(): FakeBrowserWindow[] {
      return FakeBrowserWindow.instances.filter((w) => !w.closed);
    }
    static getFocusedWindow(): FakeBrowserWindow | null {
      return FakeBrowserWindow.focused;
    }
    readonly webContents = new FakeWebContents();
    readonly loaded: string[] = [];
    closed = false;
    shown = false;
    constructor(readonly options: Record<string, unknown>) {
      super();
      FakeBrowserWindow.instances.push(this);
    }
    loadURL(url: string): Promise<void> {
      this.loaded.push(url);
      return Promise.resolve();
    }
    show(): void {
      this.shown = true;
    }
    isDestroyed(): boolean {
      return this.closed;
    }
    isMinimized(): boolean {
      return false;
    }
    restore(): void {}
    focus(): void {}
  }

  type Listener = (event: unknown, ...args: unknown[]) => unknown;
  const ipcHandlers = new Map<string, Listener>();

  const app = Object.assign(new EventEmitter(), {
    isPackaged: false,
    appRoot: '/nowhere',
    enableSandbox: vi.fn(() => void order.push('enableSandbox')),
    requestSingleInstanceLock: vi.fn(() => {
      order.push('lock');
      return true;
    }),
    whenReady: vi.fn(async () => void order.push('whenReady')),
    getAppPath: vi.fn(() => app.appRoot),
    getPath: vi.fn((name: string) => `/nowhere/${name}`),
    setName: vi.fn(() => void order.push('setName')),
    setPath: vi.fn(() => void order.push('setPath')),
    quit: vi.fn(),
  });

  return {
    order,
    FakeBrowserWindow,
    FakeWebContents,
    ipcHandlers,
    electron: {
      app,
      BrowserWindow: FakeBrowserWindow,
      ipcMain: {
        handle: (channel: string, listener: Listener) => void ipcHandlers.set(channel, listener),
        removeHandler: (channel: string) => void ipcHandlers.delete(channel),
      },
      protocol: {
        registerSchemesAsPrivileged: vi.fn(
          (_schemes: { scheme: string; privileges: Record<string, boolean> }[]) =>
            void order.push('registerSchemesAsPrivileged'),
        ),
        handle: vi.fn(() => void order.push('protocol.handle')),
      },
      session: {
        defaultSession: { setPermissionRequestHandler: vi.fn(), setPermissionCheckHandler: vi.fn() },
      },
      dialog: { showOpenDialog: vi.fn(), showErrorBox: vi.fn() },
      shell: { openExternal: vi.fn(async () => {}) },
    },
  };
});

vi.mock('electron', () => fx.electron);

import {
  APP_INDEX_URL,
  BUNDLE_PATHS,
  CONTENT_SECURITY_POLICY,
  createMainWindow,
  createProtocolHandler,
  hardenWebContents,
  startDesktopApp,
  unpackedEsbuildBinary,
  windowOptions,
  withDesktopPaths,
  type DesktopApp,
} from '../../electron/main.ts';
import { API_METHODS, type RankwiseApi } from '../../main/contract/index.ts';

type FakeWindow = InstanceType<typeof fx.FakeBrowserWindow>;
const { electron } = fx;

function navigation(url: string) {
  return { url, preventDefault: vi.fn() };
}

let tmp: string;
let rendererDir: string;
const SECRET = 'top secret, outside the renderer';

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-electron-'));
  rendererDir = path.join(tmp, 'dist', 'renderer');
  fs.mkdirSync(path.join(rendererDir, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Rankwise</title>');
  fs.writeFileSync(path.join(rendererDir, 'assets', 'app.js'), 'console.log(1)');
  fs.writeFileSync(path.join(tmp, 'secret.txt'), SECRET);
  fs.writeFileSync(path.join(tmp, 'dist', 'secret.txt'), SECRET);
  fs.mkdirSync(path.join(tmp, 'dist', 'renderer-secret'));
  fs.writeFileSync(path.join(tmp, 'dist', 'renderer-secret', 'x.txt'), SECRET);
  electron.app.appRoot = tmp;
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

beforeEach(() => {
  vi.clearAllMocks();
  fx.order.length = 0;
  fx.FakeBrowserWindow.instances = [];
  fx.FakeBrowserWindow.focused = null;
  fx.ipcHandlers.clear();
  electron.app.removeAllListeners();
  electron.app.isPackaged = false;
});

describe('window options', () => {
  it('isolate the page: context isolation, sandbox, no Node, web security on, the bundled preload', () => {
    const prefs = windowOptions('/app/dist/electron/preload.cjs').webPreferences!;
    expect(prefs.contextIsolation).toBe(true);
    expect(prefs.sandbox).toBe(true);
    expect(prefs.nodeIntegration).toBe(false);
    expect(prefs.nodeIntegrationInWorker).toBe(false);
    expect(prefs.nodeIntegrationInSubFrames).toBe(false);
    expect(prefs.webSecurity).toBe(true);
    expect(prefs.allowRunningInsecureContent).toBe(false);
    expect(prefs.webviewTag).toBe(false);
    expect(prefs.preload).toBe('/app/dist/electron/preload.cjs');
  });
});

describe('content security policy', () => {
  const directives = new Map(
    CONTENT_SECURITY_POLICY.split(';').map((d) => {
      const [name, ...values] = d.trim().split(/\s+/);
      return [name, values] as const;
    }),
  );

  it('allows scripts from the app itself only, never eval or inline script', () => {
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-eval|wasm-unsafe-eval|strict-dynamic/);
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('default-src')).toEqual(["'self'"]);
  });

  it('closes plugins, base-URL rewriting and framing', () => {
    expect(directives.get('object-src')).toEqual(["'none'"]);
    expect(directives.get('base-uri')).toEqual(["'none'"]);
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(directives.get('connect-src')).toEqual(["'self'"]);
  });

  it('is the policy the design asks for', () => {
    expect(CONTENT_SECURITY_POLICY).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    );
  });
});

describe('createMainWindow', () => {
  let win: FakeWindow;
  beforeEach(() => {
    win = createMainWindow({ preloadPath: '/app/preload.cjs' }) as unknown as FakeWindow;
  });

  it('builds the window from windowOptions and loads the app page', () => {
    expect(fx.FakeBrowserWindow.instances).toEqual([win]);
    expect(win.options).toEqual(windowOptions('/app/preload.cjs'));
    expect(win.loaded).toEqual([APP_INDEX_URL]);
    expect(win.shown).toBe(false);
    win.emit('ready-to-show');
    expect(win.shown).toBe(true);
  });

  it('prevents navigation off the app origin and lets the app navigate within itself', () => {
    for (const url of [
      'https://example.com/',
      'http://localhost:5173/',
      'file:///etc/passwd',
      'app://other/index.html',
      'javascript:alert(1)',
    ]) {
      const event = navigation(url);
      win.webContents.emit('will-navigate', event);
      expect(event.preventDefault, url).toHaveBeenCalled();
    }
    const inside = navigation('app://rankwise/index.html#/results');
    win.webContents.emit('will-navigate', inside);
    expect(inside.preventDefault).not.toHaveBeenCalled();

    const redirect = navigation('https://example.com/');
    win.webContents.emit('will-redirect', redirect);
    expect(redirect.preventDefault).toHaveBeenCalled();
  });

  it('hands https links to the browser, and nothing else', () => {
    win.webContents.emit('will-navigate', navigation('https://huggingface.co/docs'));
    win.webContents.emit('will-navigate', navigation('file:///etc/passwd'));
    win.webContents.emit('will-navigate', navigation('http://example.com/'));
    win.webContents.emit('will-navigate', navigation('https://user:pw@example.com/'));
    expect(electron.shell.openExternal.mock.calls).toEqual([['https://huggingface.co/docs']]);
  });

  it('denies every window.open, opening only https links externally', () => {
    const open = win.webContents.windowOpenHandler!;
    expect(open({ url: 'app://rankwise/index.html' })).toEqual({ action: 'deny' });
    expect(open({ url: 'https://example.com/paper.pdf' })).toEqual({ action: 'deny' });
    expect(open({ url: 'javascript:alert(1)' })).toEqual({ action: 'deny' });
    expect(open({ url: 'smb://share/x' })).toEqual({ action: 'deny' });
    expect(electron.shell.openExternal.mock.calls).toEqual([['https://example.com/paper.pdf']]);
  });

  it('refuses <webview>, and hardening twice adds nothing', () => {
    const event = { preventDefault: vi.fn() };
    win.webContents.emit('will-attach-webview', event);
    expect(event.preventDefault).toHaveBeenCalled();
    const before = win.webContents.listenerCount('will-navigate');
    hardenWebContents(win.webContents as never);
    expect(win.webContents.listenerCount('will-navigate')).toBe(before);
  });
});

describe('the app: protocol', () => {
  const serve = (url: string, method = 'GET') => createProtocolHandler(rendererDir)({ url, method });

  it('serves the renderer with the CSP on every response', async () => {
    const index = await serve('app://rankwise/');
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(await index.text()).toContain('<title>Rankwise</title>');

    const script = await serve('app://rankwise/assets/app.js');
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(script.headers.get('x-content-type-options')).toBe('nosniff');

    const missing = await serve('app://rankwise/nope.js');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
  });

  const escapes: [string, (root: string) => string][] = [
    ['an encoded slash', () => 'app://rankwise/..%2Fsecret.txt'],
    ['two encoded slashes', () => 'app://rankwise/..%2F..%2Fsecret.txt'],
    ['from a subfolder', () => 'app://rankwise/assets/..%2F..%2F..%2Fsecret.txt'],
    ['encoded dots', () => 'app://rankwise/%2e%2e/%2e%2e/secret.txt'],
    ['plain dots', () => 'app://rankwise/../../secret.txt'],
    ['encoded backslashes', () => 'app://rankwise/..%5C..%5Csecret.txt'],
    ['a sibling folder sharing the prefix', () => 'app://rankwise/..%2Frenderer-secret%2Fx.txt'],
    ['a NUL byte', () => 'app://rankwise/index.html%00.js'],
    [
      'an encoded absolute path',
      (root) => `app://rankwise/${encodeURIComponent(path.join(root, 'secret.txt'))}`,
    ],
    ['a doubled leading slash', (root) => `app://rankwise//${root.replace(/^\//, '')}/secret.txt`],
  ];

  it.each(escapes)('refuses to leave the renderer folder: %s', async (_name, url) => {
    const response = await serve(url(tmp));
    expect([400, 403, 404]).toContain(response.status);
    expect(await response.text()).not.toContain(SECRET);
    expect(response.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
  });

  it('answers only its own host, and only GET and HEAD', async () => {
    expect((await serve('app://elsewhere/index.html')).status).toBe(404);
    expect((await serve('app://rankwise/index.html', 'POST')).status).toBe(405);
    const head = await serve('app://rankwise/index.html', 'HEAD');
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });
});

describe('startDesktopApp', () => {
  const MODEL = path.resolve('/rw-desktop/models/tiny');

  function fakeEngine() {
    const engine = {} as Record<string, ReturnType<typeof vi.fn>>;
    for (const method of API_METHODS)
      engine[method] = vi.fn(async (...args: unknown[]) => ({ engine: method, args }));
    engine.subscribe = vi.fn(() => vi.fn());
    engine.close = vi.fn(async () => {});
    return engine;
  }

  async function start(engine = fakeEngine()) {
    const createApi = vi.fn(() => engine as unknown as RankwiseApi);
    const desktop = (await startDesktopApp({ createApi })) as DesktopApp;
    const win = desktop.window as unknown as FakeWindow;
    const invoke = (method: string, ...args: unknown[]) =>
      fx.ipcHandlers.get(`rankwise:${method}`)!(
        { sender: win.webContents, senderFrame: win.webContents.mainFrame },
        ...args,
      );
    return { engine, createApi, desktop, win, invoke };
  }

  it('registers the privileged app: scheme and the sandbox before the app is ready', async () => {
    await start();
    expect(electron.protocol.registerSchemesAsPrivileged).toHaveBeenCalledWith([
      expect.objectContaining({
        scheme: 'app',
        privileges: expect.objectContaining({ standard: true, secure: true }),
      }),
    ]);
    const privileges = electron.protocol.registerSchemesAsPrivileged.mock.calls[0][0][0].privileges;
    expect(privileges.bypassCSP).toBeFalsy();
    expect(fx.order.indexOf('registerSchemesAsPrivileged')).toBeLessThan(fx.order.indexOf('whenReady'));
    expect(fx.order.indexOf('enableSandbox')).toBeLessThan(fx.order.indexOf('whenReady'));
    expect(fx.order.indexOf('protocol.handle')).toBeGreaterThan(fx.order.indexOf('whenReady'));
  });

  it('names itself Rankwise and keeps its profile under that name, before taking the instance lock', async () => {
    await start();
    expect(electron.app.setName).toHaveBeenCalledWith('Rankwise');
    expect(electron.app.setPath).toHaveBeenCalledWith('userData', path.join('/nowhere/appData', 'Rankwise'));
    expect(fx.order.indexOf('setPath')).toBeLessThan(fx.order.indexOf('lock'));
  });

  it('serves dist/renderer from the app root over app:', async () => {
    await start();
    const [scheme, handler] = electron.protocol.handle.mock.calls[0] as unknown as [
      string,
      (r: { url: string; method: string }) => Promise<Response>,
    ];
    expect(scheme).toBe('app');
    const response = await handler({ url: 'app://rankwise/index.html', method: 'GET' });
    expect(await response.text()).toContain('Rankwise');
  });

  it('denies every permission request and check', async () => {
    await start();
    const onRequest = electron.session.defaultSession.setPermissionRequestHandler.mock.calls[0][0];
    const callback = vi.fn();
    for (const permission of ['media', 'geolocation', 'notifications', 'openExternal', 'clipboard-read']) {
      onRequest({}, permission, callback, {});
    }
    expect(callback.mock.calls).toEqual(Array(5).fill([false]));
    const onCheck = electron.session.defaultSession.setPermissionCheckHandler.mock.calls[0][0];
    expect(onCheck({}, 'media', 'app://rankwise', {})).toBe(false);
  });

  it('creates the engine once, wires every channel and opens the hardened window', async () => {
    const { createApi, win } = await start();
    expect(createApi).toHaveBeenCalledTimes(1);
    const channels = API_METHODS.filter((m) => m !== 'subscribe').map((m) => `rankwise:${m}`);
    expect([...fx.ipcHandlers.keys()].sort()).toEqual(
      [...channels, 'rankwise:subscribe', 'rankwise:unsubscribe'].sort(),
    );
    expect(win.options).toEqual(windowOptions(path.join(tmp, BUNDLE_PATHS.preload)));
    expect(win.loaded).toEqual([APP_INDEX_URL]);
    expect(win.webContents.windowOpenHandler).not.toBeNull();
  });

  it('a path picked in the native dialog becomes usable; others stay refused', async () => {
    const { engine, invoke } = await start();
    expect(await invoke('inspect', MODEL)).toMatchObject({ ok: false, error: { kind: 'bad-input' } });

    electron.dialog.showOpenDialog.mockResolvedValueOnce({ canceled: false, filePaths: [MODEL] });
    expect(await invoke('choosePath', 'model')).toEqual({ ok: true, value: MODEL });
    expect(electron.dialog.showOpenDialog.mock.calls[0][0]).toMatchObject({
      properties: ['openDirectory', 'dontAddToRecent'],
    });
    expect(engine.choosePath).not.toHaveBeenCalled();

    expect(await invoke('inspect', MODEL)).toEqual({ ok: true, value: { engine: 'inspect', args: [MODEL] } });
    expect(await invoke('inspect', path.resolve('/rw-desktop/other'))).toMatchObject({ ok: false });
  });

  it('the dialog is modal to the focused window when there is one', async () => {
    const { win, invoke } = await start();
    fx.FakeBrowserWindow.focused = win;
    electron.dialog.showOpenDialog.mockResolvedValueOnce({ canceled: true, filePaths: [] });
    expect(await invoke('choosePath', 'data')).toEqual({ ok: true, value: null });
    expect(electron.dialog.showOpenDialog.mock.calls[0][0]).toBe(win);
  });

  it('browse is the desktop one, confined to picked folders, never the engine one', async () => {
    const { engine, invoke } = await start();
    expect(await invoke('browse')).toMatchObject({ ok: false, error: { kind: 'bad-input' } });
    expect(engine.browse).not.toHaveBeenCalled();
  });

  it('quits when the last window closes, stopping the engine first', async () => {
    const { engine } = await start();
    electron.app.emit('window-all-closed');
    expect(electron.app.quit).toHaveBeenCalledTimes(1);

    const quitting = { preventDefault: vi.fn() };
    electron.app.emit('will-quit', quitting);
    expect(quitting.preventDefault).toHaveBeenCalled();
    expect(fx.ipcHandlers.size).toBe(0);
    await vi.waitFor(() => expect(electron.app.quit).toHaveBeenCalledTimes(2));
    expect(engine.close).toHaveBeenCalledTimes(1);

    // the second will-quit (from that quit) goes through
    const again = { preventDefault: vi.fn() };
    electron.app.emit('will-quit', again);
    expect(again.preventDefault).not.toHaveBeenCalled();
  });

  it('hardens every webContents the app creates', async () => {
    await start();
    const contents = new fx.FakeWebContents();
    electron.app.emit('web-contents-created', {}, contents);
    expect(contents.windowOpenHandler?.({ url: 'https://example.com' })).toEqual({ action: 'deny' });
  });

  it('tells the user and quits when the engine cannot start', async () => {
    const result = await startDesktopApp({
      createApi: () => {
        throw new Error('onnxruntime failed to load');
      },
    });
    expect(result).toBeNull();
    expect(electron.dialog.showErrorBox).toHaveBeenCalledWith(
      'Rankwise could not start',
      'onnxruntime failed to load',
    );
    expect(electron.app.quit).toHaveBeenCalled();
    expect(fx.FakeBrowserWindow.instances).toEqual([]);
  });

  it('a second instance quits at once', async () => {
    electron.app.requestSingleInstanceLock.mockReturnValueOnce(false);
    const createApi = vi.fn();
    expect(await startDesktopApp({ createApi })).toBeNull();
    expect(electron.app.quit).toHaveBeenCalled();
    expect(createApi).not.toHaveBeenCalled();
  });

  it('a packaged app points esbuild (for the job worker) at its unpacked executable', async () => {
    const saved = process.env.ESBUILD_BINARY_PATH;
    delete process.env.ESBUILD_BINARY_PATH;
    const savedResources = (process as { resourcesPath?: string }).resourcesPath;
    (process as { resourcesPath?: string }).resourcesPath = '/opt/Rankwise/resources';
    try {
      electron.app.isPackaged = true;
      await start();
      expect(process.env.ESBUILD_BINARY_PATH).toBe(unpackedEsbuildBinary('/opt/Rankwise/resources'));
    } finally {
      if (saved === undefined) delete process.env.ESBUILD_BINARY_PATH;
      else process.env.ESBUILD_BINARY_PATH = saved;
      (process as { resourcesPath?: string }).resourcesPath = savedResources;
    }
  });
});

describe('helpers', () => {
  it('unpackedEsbuildBinary follows the @esbuild package layouts', () => {
    expect(unpackedEsbuildBinary('/r', 'linux', 'x64')).toBe(
      path.join('/r', 'app.asar.unpacked', 'node_modules', '@esbuild', 'linux-x64', 'bin', 'esbuild'),
    );
    expect(unpackedEsbuildBinary('/r', 'win32', 'x64')).toBe(
      path.join('/r', 'app.asar.unpacked', 'node_modules', '@esbuild', 'win32-x64', 'esbuild.exe'),
    );
  });

  it('withDesktopPaths keeps an engine written as a class working', async () => {
    class Engine {
      #jobs = ['job-1'];
      async listJobs() {
        return this.#jobs;
      }
    }
    const engine = new Engine();
    for (const method of API_METHODS) {
      if (!(method in engine)) (engine as unknown as Record<string, unknown>)[method] = vi.fn();
    }
    const choosePath = vi.fn(async () => '/picked');
    const api = withDesktopPaths(engine as unknown as RankwiseApi, { choosePath, browse: vi.fn() });
    expect(await api.listJobs()).toEqual(['job-1']);
    expect(await api.choosePath('model')).toBe('/picked');
    expect(Object.keys(api).sort()).toEqual([...API_METHODS].sort());
  });
});
