/**
 * The wizard's build for browser mode, made on demand: `rankwise serve` calls ensureRendererBuild before it
 * listens, so the README's browser command opens the wizard on a fresh clone (whose dist/ is ignored by git
 * and so absent), and after a `git pull` never serves a wizard older than the engine it talks to.
 *
 * Why in the command rather than in an npm script (`"serve": "npm run build && …"`): every way of starting
 * browser mode goes through the command — `npx rankwise serve`, `npm run serve`, `node bin/rankwise.mjs
 * serve`, `npm start` without Electron — and a script would cover one of them and rebuild on every start.
 * Why this way:
 *  - it builds only when index.html is missing or older than one of the build's inputs (the folders the
 *    renderer may take code from, which ESLint enforces, and the build's configuration), so a normal start
 *    costs a few stats;
 *  - vite runs as a child process, so its bundler stays out of the long-running server;
 *  - it builds into a temporary folder beside the build and swaps it in only when complete, so a failed or
 *    interrupted build never leaves a half-written page; a build that cannot run (vite, a dev dependency,
 *    not installed; a read-only checkout) is reported and the server still starts: an older build is served
 *    as it is, and without one the page says how to build it (main/server/server.ts);
 *  - everything it writes is under dist/, which .gitignore names: the tree stays clean.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where `npm run build` and `rankwise serve` put the renderer (vite.config.ts, build.outDir). */
export const DEFAULT_STATIC_DIR = path.join(REPO_ROOT, 'dist', 'renderer');

/**
 * What the renderer build reads: its own sources, the two engine folders it may import values from
 * (eslint.config.js: main/core and main/contract; type-only imports leave nothing in the bundle), and the
 * build's configuration and dependencies.
 */
export const RENDERER_INPUTS: readonly string[] = [
  'renderer',
  'main/core',
  'main/contract',
  'vite.config.ts',
  'tsconfig.json',
  'package.json',
  'package-lock.json',
].map((p) => path.join(REPO_ROOT, p));

export type BuildState = 'missing' | 'stale' | 'fresh';

/**
 * Whether to build: `builtMs` is the build's time (its index.html's mtime; null when there is none),
 * `newestInputMs` the newest mtime among its inputs (null when none could be read).
 */
export function buildState(builtMs: number | null, newestInputMs: number | null): BuildState {
  if (builtMs === null) return 'missing';
  return newestInputMs !== null && newestInputMs > builtMs ? 'stale' : 'fresh';
}

/**
 * The newest mtime among `paths` and, for folders, everything under them. A folder's own mtime counts: it
 * changes when a file in it is added, removed or renamed, which leaves the other files' mtimes alone.
 * Links are not followed; missing paths are skipped. null when nothing was found.
 */
export function newestMtime(paths: readonly string[]): number | null {
  let newest: number | null = null;
  const visit = (p: string) => {
    const stat = fs.lstatSync(p, { throwIfNoEntry: false });
    if (stat === undefined) return;
    newest = Math.max(newest ?? stat.mtimeMs, stat.mtimeMs);
    if (stat.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name));
  };
  for (const p of paths) visit(p);
  return newest;
}

/** The build's time: its index.html's mtime, or null when there is no build. */
export function builtAt(staticDir: string): number | null {
  const stat = fs.statSync(path.join(staticDir, 'index.html'), { throwIfNoEntry: false });
  return stat?.isFile() ? stat.mtimeMs : null;
}

export interface EnsureRendererOptions {
  staticDir: string;
  /** Defaults to RENDERER_INPUTS. */
  inputs?: readonly string[];
  /** Writes a complete build into `outDir`, an empty folder; defaults to viteBuild. */
  build?: (outDir: string) => Promise<void>;
  /** One line per message, for the person who started the server. */
  log: (message: string) => void;
}

export interface EnsureRendererResult {
  state: BuildState;
  /** True when this call built and swapped in a new build. */
  built: boolean;
  /** Why the build failed, when it did; the folder is then as it was. */
  error?: string;
}

/** Builds the renderer into `staticDir` when the build is missing or stale; never throws for a failed build. */
export async function ensureRendererBuild(o: EnsureRendererOptions): Promise<EnsureRendererResult> {
  const state = buildState(builtAt(o.staticDir), newestMtime(o.inputs ?? RENDERER_INPUTS));
  if (state === 'fresh') return { state, built: false };
  o.log(
    state === 'missing'
      ? `building the wizard into ${o.staticDir} (first start; a few seconds)…`
      : `the wizard's sources changed since it was built: building it again into ${o.staticDir}…`,
  );
  const started = Date.now();
  let tmp: string | null = null;
  try {
    const parent = path.dirname(o.staticDir);
    const prefix = `.${path.basename(o.staticDir)}.building-`;
    fs.mkdirSync(parent, { recursive: true });
    removeAbandoned(parent, prefix, started);
    tmp = fs.mkdtempSync(path.join(parent, prefix));
    await (o.build ?? viteBuild)(tmp);
    const index = path.join(tmp, 'index.html');
    if (!fs.existsSync(index)) throw new Error('the build wrote no index.html');
    // The build is as old as the sources it read: an input saved while it ran makes the next start rebuild.
    const startedAt = new Date(started);
    fs.utimesSync(index, startedAt, startedAt);
    // mkdtemp made it private; a build is as readable as `npm run build` leaves it
    fs.chmodSync(tmp, 0o755);
    swapIn(tmp, o.staticDir);
    tmp = null;
    o.log(`built the wizard in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { state, built: true };
  } catch (e) {
    return { state, built: false, error: e instanceof Error ? e.message : String(e) };
  } finally {
    if (tmp !== null) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** A build takes seconds: a temporary folder this old was left by a server killed while it built. */
const ABANDONED_MS = 10 * 60 * 1000;

function removeAbandoned(parent: string, prefix: string, now: number): void {
  for (const name of fs.readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue;
    const p = path.join(parent, name);
    const stat = fs.lstatSync(p, { throwIfNoEntry: false });
    if (stat?.isDirectory() && now - stat.mtimeMs > ABANDONED_MS)
      fs.rmSync(p, { recursive: true, force: true });
  }
}

/** Puts the complete build `fresh` at `dir`, replacing what was there, by two renames. */
function swapIn(fresh: string, dir: string): void {
  const old = fs.existsSync(dir) ? `${fresh}.old` : null;
  if (old !== null) fs.renameSync(dir, old);
  try {
    fs.renameSync(fresh, dir);
  } catch (e) {
    // put the old build back rather than leave none
    if (old !== null && !fs.existsSync(dir)) fs.renameSync(old, dir);
    throw e;
  }
  if (old !== null) fs.rmSync(old, { recursive: true, force: true });
}

/** `vite build` of the repository's vite.config.ts into `outDir`, in a child process. */
export function viteBuild(outDir: string): Promise<void> {
  let vite: string;
  try {
    vite = path.join(
      path.dirname(createRequire(import.meta.url).resolve('vite/package.json')),
      'bin',
      'vite.js',
    );
  } catch {
    return Promise.reject(new Error('vite is not installed (it is a dev dependency: run `npm ci`)'));
  }
  const args = [vite, 'build', '--config', path.join(REPO_ROOT, 'vite.config.ts')];
  args.push('--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      // what ships: React's production build, whatever NODE_ENV the caller has
      env: { ...process.env, NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`vite build failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}
