/**
 * The Electron main process: app lifecycle, the `app://rankwise` scheme serving the built renderer, the
 * hardened window, and the IPC bridge to the engine. The engine itself comes from a factory passed to
 * `startDesktopApp` (electron/app.ts passes the real one), so every piece here can be tested with fakes.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BrowserWindow, app, dialog, ipcMain, protocol, session, shell } from 'electron';
import type { BrowserWindowConstructorOptions, OpenDialogOptions, WebContents } from 'electron';
import { API_METHODS, HOST_METHODS, type ApiMethod, type RankwiseApi } from '../main/contract/index.ts';
import { createDesktopPaths, grantListedModels, type DesktopPaths } from './dialogs.ts';
import { registerIpc } from './ipc.ts';
import { PathRegistry } from './path-registry.ts';
import { CONTENT_TYPES } from '../main/server/content-types.ts';

export const APP_SCHEME = 'app';
export const APP_HOST = 'rankwise';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const APP_INDEX_URL = `${APP_ORIGIN}/index.html`;
export const PRODUCT_NAME = 'Rankwise';

/**
 * Sent with every app:// response. MUI/Emotion inject <style> elements, hence 'unsafe-inline' for styles
 * only; scripts come from the app's own files and nothing else (no eval, no inline script).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Where the built files sit inside the app (the repository root, or app.asar when packaged). */
export const BUNDLE_PATHS = {
  preload: path.join('dist', 'electron', 'preload.cjs'),
  renderer: path.join('dist', 'renderer'),
};

export function windowOptions(preloadPath: string): BrowserWindowConstructorOptions {
  return {
    width: 1280,
    height: 860,
    minWidth: 900,
    minHeight: 600,
    title: 'Rankwise',
    // shown on ready-to-show, so the user never sees an empty frame
    show: false,
    webPreferences: {
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      webviewTag: false,
      preload: preloadPath,
    },
  };
}

type ResponseBody = ConstructorParameters<typeof Response>[0];

function respond(status: number, body: ResponseBody, contentType = 'text/plain; charset=utf-8'): Response {
  return new Response(body, {
    status,
    headers: {
      'Content-Type': contentType,
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    },
  });
}

/**
 * The `app:` protocol handler: files under `rootDir` and nothing else. The URL parser already folds
 * literal dot segments; what is checked here is what decoding can reintroduce (%2F, %5C, NUL) and
 * where the resolved path finally lands.
 */
export function createProtocolHandler(
  rootDir: string,
  readFile: (file: string) => Promise<Uint8Array<ArrayBuffer>> = fs.readFile,
): (request: Pick<Request, 'url' | 'method'>) => Promise<Response> {
  const root = path.resolve(rootDir);
  return async (request) => {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return respond(400, 'Bad request');
    }
    if (url.protocol !== `${APP_SCHEME}:` || url.host.toLowerCase() !== APP_HOST)
      return respond(404, 'Not found');
    if (request.method !== 'GET' && request.method !== 'HEAD') return respond(405, 'Method not allowed');

    let decoded: string;
    try {
      decoded = decodeURIComponent(url.pathname);
    } catch {
      return respond(400, 'Bad request');
    }
    if (decoded.includes('\0') || decoded.includes('\\') || decoded.split('/').includes('..')) {
      return respond(403, 'Forbidden');
    }
    const relative = decoded === '/' || decoded === '' ? 'index.html' : decoded.replace(/^\/+/, '');
    const file = path.resolve(root, relative);
    const rel = path.relative(root, file);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return respond(403, 'Forbidden');

    let body: Uint8Array<ArrayBuffer>;
    try {
      body = await readFile(file);
    } catch {
      return respond(404, 'Not found');
    }
    const type = CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
    return respond(200, request.method === 'HEAD' ? null : body, type);
  };
}

export function isAppUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.protocol === `${APP_SCHEME}:` && parsed.host.toLowerCase() === APP_HOST;
  } catch {
    return false;
  }
}

/** Opens plain https links in the user's browser; anything else (file:, javascript:, custom schemes) is dropped. */
export function openExternalSafely(
  url: string,
  open: (url: string) => Promise<void> = shell.openExternal,
): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'https:' || parsed.username || parsed.password) return false;
  open(parsed.href).catch(() => {
    // no browser to hand the link to is not the app's failure
  });
  return true;
}

type HardenableContents = Pick<WebContents, 'on' | 'setWindowOpenHandler'>;
const hardened = new WeakSet<object>();

/**
 * Keeps a webContents on the app: navigation away is cancelled (https links go to the browser), new
 * windows are never opened, and <webview> cannot be attached. Idempotent, so it can run both for the
 * window it creates and from 'web-contents-created'.
 */
export function hardenWebContents(contents: HardenableContents): void {
  if (hardened.has(contents)) return;
  hardened.add(contents);
  contents.on('will-navigate', (event) => {
    if (isAppUrl(event.url)) return;
    event.preventDefault();
    openExternalSafely(event.url);
  });
  contents.on('will-redirect', (event) => {
    if (!isAppUrl(event.url)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    openExternalSafely(url);
    return { action: 'deny' };
  });
}

export interface MainWindowDeps {
  preloadPath: string;
  url?: string;
}

export function createMainWindow(deps: MainWindowDeps): BrowserWindow {
  const win = new BrowserWindow(windowOptions(deps.preloadPath));
  hardenWebContents(win.webContents);
  win.once('ready-to-show', () => win.show());
  win.loadURL(deps.url ?? APP_INDEX_URL).catch((e: unknown) => {
    console.error('rankwise: the window could not load the app (is dist/renderer built?)', e);
  });
  return win;
}

/** Before 'ready': `app:` behaves like https (an origin, a secure context, fetch) for the renderer. */
export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([
    {
      scheme: APP_SCHEME,
      privileges: { standard: true, secure: true, supportFetchAPI: true, codeCache: true },
    },
  ]);
}

/** The desktop app answers the manifest's host methods (choosePath, browse) itself; the rest go to the engine. */
export function withDesktopPaths(engine: RankwiseApi, desktop: DesktopPaths): RankwiseApi {
  const api = {} as Record<ApiMethod, unknown>;
  for (const method of API_METHODS) {
    // bound, not spread: an engine written as a class keeps its methods on the prototype
    api[method] = (engine[method] as (...args: unknown[]) => unknown).bind(engine);
  }
  for (const method of HOST_METHODS) api[method] = desktop[method];
  return api as RankwiseApi;
}

/**
 * Where the esbuild executable lies in a packaged app. The job worker runs TypeScript through tsx, which
 * spawns esbuild; esbuild looks for itself under node_modules inside app.asar, where nothing can be
 * executed, so it is pointed at the unpacked copy (electron-builder.yml unpacks it).
 */
export function unpackedEsbuildBinary(
  resourcesPath: string,
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): string {
  const pkg = path.join(
    resourcesPath,
    'app.asar.unpacked',
    'node_modules',
    '@esbuild',
    `${platform}-${arch}`,
  );
  return platform === 'win32' ? path.join(pkg, 'esbuild.exe') : path.join(pkg, 'bin', 'esbuild');
}

/** The engine, and how to stop its workers when the app quits. */
export type EngineApi = RankwiseApi & { close?: () => Promise<void> };
export type ApiFactory = () => EngineApi | Promise<EngineApi>;

/** How long quitting waits for the engine to stop its workers. */
export const ENGINE_CLOSE_TIMEOUT_MS = 5000;

export interface DesktopAppOptions {
  createApi: ApiFactory;
  /**
   * The folder holding dist/ (the repository root, or app.asar). Defaults to app.getAppPath(), which is
   * dist/electron itself when Electron is started on the bundle file rather than on the folder.
   */
  appRoot?: string;
}

export interface DesktopApp {
  window: BrowserWindow;
  paths: PathRegistry;
  dispose: () => void;
}

/**
 * Boots the desktop app. Resolves once the first window exists, or with null when another instance
 * already runs or the engine could not start (the user has been told).
 */
export async function startDesktopApp(opts: DesktopAppOptions): Promise<DesktopApp | null> {
  // `electron dist/electron/main.cjs` (npm start) runs without a package.json and would call itself
  // "Electron", sharing that profile folder (and single-instance lock) with every such app
  app.setName(PRODUCT_NAME);
  app.setPath('userData', path.join(app.getPath('appData'), PRODUCT_NAME));
  registerAppScheme();
  app.enableSandbox();
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return null;
  }
  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents));

  await app.whenReady();

  // the app needs no camera, notifications, clipboard reads or any other permission
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);

  const root = opts.appRoot ?? app.getAppPath();
  const serve = createProtocolHandler(path.join(root, BUNDLE_PATHS.renderer));
  protocol.handle(APP_SCHEME, (request) => serve(request));

  if (app.isPackaged && !process.env.ESBUILD_BINARY_PATH) {
    process.env.ESBUILD_BINARY_PATH = unpackedEsbuildBinary(process.resourcesPath);
  }
  let engine: EngineApi;
  try {
    engine = await opts.createApi();
  } catch (e) {
    dialog.showErrorBox('Rankwise could not start', e instanceof Error ? e.message : String(e));
    app.quit();
    return null;
  }

  const paths = new PathRegistry();
  const openDialog = (options: OpenDialogOptions) => {
    const parent = BrowserWindow.getFocusedWindow();
    return parent ? dialog.showOpenDialog(parent, options) : dialog.showOpenDialog(options);
  };
  const api = withDesktopPaths(engine, createDesktopPaths(openDialog, paths));
  api.listModels = grantListedModels(engine, paths);
  const dispose = registerIpc(ipcMain, api, {
    allowedOrigin: APP_ORIGIN,
    paths,
    windows: () => BrowserWindow.getAllWindows().map((w) => w.webContents),
  });

  const preloadPath = path.join(root, BUNDLE_PATHS.preload);
  let mainWindow = createMainWindow({ preloadPath });

  app.on('second-instance', () => {
    if (mainWindow.isDestroyed()) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.on('activate', () => {
    // macOS keeps the app alive without windows; clicking the dock icon brings one back
    if (BrowserWindow.getAllWindows().length === 0) mainWindow = createMainWindow({ preloadPath });
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  let engineClosed = engine.close === undefined;
  app.on('will-quit', (event) => {
    dispose();
    if (engineClosed) return;
    // quitting waits (briefly) for running jobs' workers to stop and their files to be closed
    event.preventDefault();
    engineClosed = true;
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, ENGINE_CLOSE_TIMEOUT_MS).unref());
    Promise.race([engine.close?.(), timeout])
      .catch((e: unknown) => console.error('rankwise: stopping the engine failed', e))
      .finally(() => app.quit());
  });

  return { window: mainWindow, paths, dispose };
}
