import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RankwiseApi } from '../../contract/index.ts';
import { badInput, RankwiseError } from '../../core/errors.ts';
import { PathGuard } from '../../server/paths.ts';
import { startServer } from '../../server/server.ts';
import { COMMON_OPTIONS, intOption, parse } from '../args.ts';

export const SERVE_USAGE = 'rankwise serve [--port P] [--root DIR]... [--static DIR] [--json]';

/** Where the renderer build lands (`npm run build`). */
export const DEFAULT_STATIC_DIR = fileURLToPath(new URL('../../../dist/renderer', import.meta.url));

/** The engine to serve; a factory so a bad command line fails before the engine starts. */
export type ApiFactory = () => RankwiseApi | Promise<RankwiseApi>;

export interface ServeControl {
  /** Stops the server as SIGINT/SIGTERM would (tests, and hosts that embed the command). */
  signal?: AbortSignal;
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
  const { values, positionals } = parse(argv, {
    ...COMMON_OPTIONS,
    port: { type: 'string' },
    root: { type: 'string', multiple: true },
    static: { type: 'string' },
  });
  if (positionals.length > 0) {
    throw badInput(`unexpected arguments: ${positionals.join(' ')}; usage: ${SERVE_USAGE}`);
  }
  const port = intOption(values.port, 'port', 0, 0);
  if (port > 65535) throw badInput(`--port must be at most 65535, got "${values.port}"`);
  const roots = values.root && values.root.length > 0 ? values.root : [process.cwd()];
  const staticDir = path.resolve(values.static ?? DEFAULT_STATIC_DIR);
  // The engine can take a while to start: check the cheap things first.
  await PathGuard.create(roots);
  if (!apiFactory) throw new RankwiseError('internal', 'serve was started without an engine API');
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
    if (!fs.existsSync(path.join(staticDir, 'index.html')) && !values.quiet) {
      process.stderr.write(
        `rankwise serve: no renderer build in ${staticDir}; run \`npm run build\` first\n`,
      );
    }
    await stop.requested;
    await server.close();
    // an engine with worker threads keeps the process alive until it is closed
    await (api as { close?: () => Promise<void> }).close?.();
  } finally {
    stop.dispose();
  }
}

/** Resolves on the first SIGINT or SIGTERM (or abort); a second Ctrl+C then kills as usual. */
function stopRequested(signal?: AbortSignal): { requested: Promise<void>; dispose: () => void } {
  let done: () => void = () => {};
  const requested = new Promise<void>((resolve) => (done = resolve));
  const onSignal = () => {
    dispose();
    done();
  };
  const dispose = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    signal?.removeEventListener('abort', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (signal?.aborted) onSignal();
  else signal?.addEventListener('abort', onSignal);
  return { requested, dispose };
}
