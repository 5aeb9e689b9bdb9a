/**
 * The CLI as a client of the engine API, the app's own: its jobs run in the engine's worker threads, use
 * and fill the job cache, and are listed among the app's recent jobs (the same data folder as
 * `rankwise serve`), so an identical rerun, from either face, reuses every layer already fitted.
 */
import os from 'node:os';

import { createEngineApi, defaultEngineDir } from '../api/engine-api.ts';
import type { JobEvent, JobId } from '../contract/index.ts';
import { RankwiseError, type ErrorInfo } from '../core/errors.ts';
import type { Progress } from '../core/progress.ts';
import type { CompressionPlan } from '../jobs/compress.ts';
import { layerFile, readPlanMeta } from '../jobs/job-files.ts';
import { readStoredLayer } from '../jobs/layer-store.ts';

export type Engine = ReturnType<typeof createEngineApi>;

/** The engine on the shared data folder (RANKWISE_HOME, else ~/.rankwise). */
export function openEngine(jobThreads?: number): Engine {
  return createEngineApi({ dir: defaultEngineDir(), jobThreads });
}

/** Runs `work` with an engine and closes it after, so no worker thread outlives the command. */
export async function withEngine<T>(work: (api: Engine) => Promise<T>): Promise<T> {
  // a one-shot command's main thread only waits for its job, so the job gets every core (`serve` keeps one)
  const api = openEngine(os.availableParallelism());
  try {
    return await work(api);
  } finally {
    await api.close();
  }
}

/**
 * A job's error as the CLI throws it: its kind keeps the exit code (2 for bad input), its file is named
 * once, as if the work had run in this thread, and its setting stays for the CLI to name by its flag.
 */
export function jobError(info: ErrorInfo): RankwiseError {
  const prefix = info.file ? `${info.file}: ` : '';
  const message =
    prefix && info.message.startsWith(prefix) ? info.message.slice(prefix.length) : info.message;
  return new RankwiseError(info.kind, message, info.file, info.setting);
}

export interface FollowOptions {
  onProgress?: (p: Progress) => void;
  onProfile?: (e: Extract<JobEvent, { type: 'profile' }>) => void;
  onLog?: (message: string) => void;
}

const FINAL = new Set(['done', 'failed', 'cancelled']);

/**
 * Follows a job's events until it settles: resolves when it is done, throws its error when it failed.
 * Ctrl-C cancels the job (the worker stops between units of work, and layers already fitted stay in the
 * cache for a rerun or a resume) and throws a `cancelled` error; a second Ctrl-C kills as usual.
 */
export async function followJob(api: Engine, id: JobId, opts: FollowOptions = {}): Promise<void> {
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    process.off('SIGINT', onSigint);
    // the job's own 'cancelled' state ends the wait below
    api.cancelJob(id).catch(() => undefined);
  };
  let stop: () => void = () => undefined;
  const settled = new Promise<Extract<JobEvent, { type: 'state' }>>((resolve) => {
    stop = api.subscribe(id, (e) => {
      if (e.type === 'progress') opts.onProgress?.(e);
      else if (e.type === 'profile') opts.onProfile?.(e);
      else if (e.type === 'log') opts.onLog?.(e.message);
      else if (e.type === 'state' && FINAL.has(e.state)) resolve(e);
    });
  });
  process.on('SIGINT', onSigint);
  try {
    const end = await settled;
    if (end.state === 'done') return;
    if (end.state === 'cancelled') {
      throw new RankwiseError(
        'cancelled',
        interrupted
          ? `stopped (Ctrl-C): job ${id} is cancelled; run the same command again (or resume the job in the app) and the layers it finished come from the job cache`
          : `job ${id} was cancelled`,
      );
    }
    throw jobError(end.error ?? { kind: 'internal', message: `job ${id} failed` });
  } finally {
    stop();
    process.off('SIGINT', onSigint);
  }
}

/**
 * A finished compress job's plan at its own ranks, from its job folder and the job cache: what
 * `compress --plan FILE` saves for `rankwise export` (the export jobs of the engine read the same files).
 */
export async function jobPlan(api: Engine, id: JobId): Promise<CompressionPlan> {
  const { dir, cacheDir } = await api.jobs.compressFolders(id);
  const meta = await readPlanMeta(dir);
  const layers = [];
  for (const l of meta.report.layers) {
    const stored = await readStoredLayer(layerFile(cacheDir, l.layer));
    layers.push(stored.fit.at(l.kRank, l.vRank));
  }
  return { ...meta, layers };
}
