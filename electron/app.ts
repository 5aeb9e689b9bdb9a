/**
 * The desktop entry point that build/esbuild.mjs bundles into dist/electron/main.cjs: the real engine
 * wired into the shell. Everything testable lives in main.ts; this file only joins the two.
 */
import { fileURLToPath } from 'node:url';
import { createEngineApi, defaultEngineDir } from '../main/api/engine-api.ts';
import { startDesktopApp } from './main.ts';

startDesktopApp({
  // build/esbuild.mjs maps import.meta.url to this file's place beside dist/, so '..' is the app root
  appRoot: fileURLToPath(new URL('..', import.meta.url)),
  // jobs and their cache belong to the user's profile, not to the (possibly read-only) install folder,
  // and to the same folder as the CLI's and `rankwise serve`'s, so a job started anywhere is listed here
  createApi: () => createEngineApi({ dir: defaultEngineDir() }),
}).catch((e: unknown) => {
  console.error('rankwise: the desktop app failed to start', e);
  process.exit(1);
});
