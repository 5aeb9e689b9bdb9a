import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { RankwiseApi } from '../../contract/index.ts';
import { badInput, RankwiseError } from '../../core/errors.ts';
import { PathGuard } from '../../server/paths.ts';
import { startServer } from '../../server/server.ts';
import { parseCommand } from '../args.ts';
import { SERVE_COMMAND } from './serve-spec.ts';
import { DEFAULT_STATIC_DIR, ensureRendererBuild } from '../renderer-build.ts';

export const SERVE_USAGE = 'rankwise serve [--port P] [--root DIR]... [--static DIR] [--json]';

/** The engine to serve; a factory so a bad command line fails before the engine starts. */
export type ApiFactory = () => RankwiseApi | Promise<RankwiseApi>;

export interface ServeControl {
  /** Stops the server as SIGINT/SIGTERM would (tests, and hosts that embed the command). */
  signal?: AbortSignal;
  /** Builds the default renderer folder when it is missing or stale (tests replace it). */
  ensureRenderer?: typeof ensureRendererBuild;
}

/**
 * Runs the browser-mode server until SIGINT/SIGTERM (or `control.signal`), then closes it and returns.
 * Roots default to the current folder, so `rankwise serve` in a project folder grants that folder only.
 */
export async function serveCommand(
  argv: string[],
  apiFactory?: ApiFactory,
  control: ServeControl = {},
): Promise<void> {
  const { values, positionals } = parseCommand(argv, SERVE_COMMAND);
  if (positionals.length > 0) {
    throw badInput(`unexpected arguments: ${positionals.join(' ')}; usage: ${SERVE_USAGE}`);
  }
  const port = values.port;
  const roots = values.root && values.root.length > 0 ? values.root : [process.cwd()];
  const staticDir = path.resolve(values.static ?? DEFAULT_STATIC_DIR);
  // The engine can take a while to start: check the cheap things first.
  await PathGuard.create(roots);
  if (!apiFactory) throw new RankwiseError('internal', 'serve was started without an engine API');
  const note = (message: string) => {
    if (!values.quiet) process.stderr.write(`rankwise serve: ${message}\n`);
  };
  // The repository's own build is made on demand, so a fresh clone serves the wizard (renderer-build.ts
  // says why here and how); a folder named with --static is the caller's and is served as it is.
  if (values.static === undefined) {
    const ensure = control.ensureRenderer ?? ensureRendererBuild;
    const { error } = await ensure({ staticDir, log: note });
    if (error !== undefined) note(`could not build the wizard: ${error}`);
  }
  const api = await apiFactory();

  const stop = stopRequested(control.signal);
  try {
    const server = await startServer({
      api,
      port,
      roots,
      staticDir,
      log: (message) => process.stderr.write(`rankwise serve: ${message}\n`),
    });
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ url: server.url, port: server.port, token: server.token, roots: server.roots, static: staticDir })}\n`,
      );
    } else {
      process.stdout.write(
        `Rankwise is running in browser mode. Open this address (the token in it is the password):\n\n` +
          `  ${server.url}\n\nFolders it may use: ${server.roots.join(', ')}\nCtrl+C stops it.\n`,
      );
    }
    if (!fs.existsSync(path.join(staticDir, 'index.html'))) {
      note(`no renderer build in ${staticDir}: the page says so; run \`npm run build\`, then reload it`);
    }
    await stop.requested;
    await server.close();
    // an engine with worker threads keeps the process alive until it is closed
    await (api as { close?: () => Promise<void> }).close?.();
  } finally {
    stop.dispose();
  }
}

/** How often a server started through npm checks that npm is still there. */
export const PARENT_POLL_MS = 500;

/** The parent of process `pid`, or null when it cannot be told (Linux: /proc; elsewhere: ps). */
function parentOf(pid: number): number | null {
  try {
    if (process.platform === 'linux') {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // the command name in parentheses may hold spaces: the fields after its closing one are fixed
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return Number.isInteger(ppid) && ppid > 1 ? ppid : null;
    }
    const out = execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' });
    const ppid = Number(out.trim());
    return Number.isInteger(ppid) && ppid > 1 ? ppid : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as another user
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Resolves on the first SIGINT, SIGTERM or SIGHUP (a closed terminal), or abort; a second Ctrl+C then
 * kills as usual. Started through npm (`npx rankwise serve`, `npm run serve`: npm sets npm_command), the
 * server also stops when npm goes: npm runs it under `sh -c`, and a signal to npm ends npm (and, for
 * SIGTERM, the shell) but never reaches this process, which went on serving with nobody to stop it. So
 * the parent and the grandparent (the shell and npm) are watched. Started directly, a parent that exits
 * (`nohup rankwise serve &` from a shell that then closes) is no reason to stop.
 */
function stopRequested(signal?: AbortSignal): { requested: Promise<void>; dispose: () => void } {
  let done: () => void = () => {};
  const requested = new Promise<void>((resolve) => (done = resolve));
  const onSignal = () => {
    dispose();
    done();
  };
  const watched: number[] = [];
  if (process.env.npm_command !== undefined && process.ppid > 1) {
    watched.push(process.ppid);
    const grandparent = parentOf(process.ppid);
    if (grandparent !== null) watched.push(grandparent);
  }
  const watch =
    watched.length > 0
      ? setInterval(() => {
          if (watched.some((pid) => !alive(pid))) onSignal();
        }, PARENT_POLL_MS)
      : null;
  watch?.unref();
  const dispose = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    if (watch) clearInterval(watch);
    signal?.removeEventListener('abort', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  if (signal?.aborted) onSignal();
  else signal?.addEventListener('abort', onSignal);
  return { requested, dispose };
}
