/**
 * The job manager: jobs run in worker threads (the main thread only routes messages, so it never
 * blocks), one at a time per device with a queue, with events numbered in order, cancel honoured by the
 * worker between units of work, results and summaries on disk so
 * recent jobs survive a restart, and a job cache that lets a re-run or resumed job skip finished layers.
 */
import { upgradeJobResult } from '../contract/report-upgrade.ts';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

import type {
  ExportRequest,
  JobEvent,
  JobId,
  JobKind,
  JobOutcome,
  JobSettings,
  JobState,
  JobSummary,
  TryRunSummary,
} from '../contract/api.ts';
import type { CompressReport } from '../contract/report.ts';
import { badInput, RankwiseError, toErrorInfo, type ErrorInfo } from '../core/errors.ts';
import { removeOwnPartials } from '../export/publish.ts';
import type { CompressSettings } from './compress.ts';
import {
  cacheKey,
  JOB_FILE,
  JOB_START_FILE,
  readJobJson,
  RESULT_FILE,
  tempWriter,
  writeFileAtomic,
} from './job-files.ts';
import type { FromWorker, Task, TryTask } from './messages.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Job {
  summary: JobSummary | TryRunSummary;
  /** Engine settings (paths resolved). */
  settings: CompressSettings;
  cacheKey: string;
  request?: ExportRequest;
  /** A compress job's last run: layers taken from the job cache and layers fitted anew. */
  cacheUse?: CacheUse;
  /** A Try-it run's task; such a job is kept in memory only, and its result with it. */
  tryTask?: TryTask;
  result?: unknown;
  seq: number;
  listeners: Set<(e: JobEvent) => void>;
  worker: Worker | null;
  cancelRequested: boolean;
  saving: Promise<void>;
  /** Whether the last run (or its absence) has finished: resolves at done/failed/cancelled. */
  settled: Promise<void>;
  settle: () => void;
}

/**
 * How a compress job's last run used the job cache, counted from its profile events and kept in job.json,
 * so a caller that did not follow the run (a later process, a test) can still tell a rerun was served
 * from the cache.
 */
export interface CacheUse {
  /** Layers loaded from the job cache. */
  reused: number;
  /** Layers fitted in this run (and saved to the cache). */
  fitted: number;
}

export interface JobManagerOptions {
  /** Where job folders and the job cache live. */
  dir: string;
  /** onnxruntime intra-op threads of a job's worker; default all cores but one, kept for the host. */
  jobThreads?: number;
}

const WORKER_ENTRY = new URL('./worker-entry.mjs', import.meta.url);
/** Finished Try-it runs whose results stay available. */
const KEPT_TRY_RUNS = 16;
/** How long a worker whose task has settled may take to end its thread before it is terminated. */
const EXIT_GRACE_MS = 5000;

/**
 * The figures of a compress report the recent-jobs list shows, so jobs on the same model can be told
 * apart without reading every result file.
 */
function outcomeOf(result: unknown): JobOutcome | null {
  const r = result as Partial<CompressReport> | null | undefined;
  const ppl = r?.perplexity;
  if (typeof r?.kvFraction !== 'number' || typeof ppl?.original !== 'number') return null;
  if (typeof ppl.compressed !== 'number') return null;
  return { kvFraction: r.kvFraction, perplexity: { original: ppl.original, compressed: ppl.compressed } };
}

export class JobManager {
  private readonly jobs = new Map<JobId, Job>();
  private readonly queues = new Map<string, JobId[]>();
  private readonly running = new Map<string, JobId>();
  private loaded: Promise<void> | null = null;
  private writes = 0;

  constructor(private readonly opts: JobManagerOptions) {}

  private jobDir(id: JobId): string {
    return path.join(this.opts.dir, 'jobs', id);
  }

  private cacheDir(key: string): string {
    return path.join(this.opts.dir, 'cache', key);
  }

  /**
   * Recent jobs from earlier sessions; a job that was running when the app stopped reads as cancelled. A
   * job whose job.json is damaged is listed as failed, naming the file, with the settings it was started
   * with (job-start.json), so it can be resumed; one with neither file readable is reported (a process
   * warning naming the file) and left out, and never stops the others from loading.
   */
  private load(): Promise<void> {
    this.loaded ??= (async () => {
      const root = path.join(this.opts.dir, 'jobs');
      const ids = await fs.promises.readdir(root).catch(() => [] as string[]);
      for (const id of ids) {
        try {
          await this.loadJob(root, id);
        } catch (e) {
          process.emitWarning(`Rankwise: job ${id} is not listed: ${errorText(e)}`, 'RankwiseJobWarning');
        }
      }
    })();
    return this.loaded;
  }

  private async loadJob(root: string, id: string): Promise<void> {
    const dir = path.join(root, id);
    if (!(await fs.promises.stat(dir)).isDirectory()) return;
    const file = path.join(dir, JOB_FILE);
    let saved: SavedJob;
    try {
      saved = parseSavedJob(await readJobJson(file, LOST), id, file);
    } catch (e) {
      const start = path.join(dir, JOB_START_FILE);
      const [hasJob, hasStart] = await Promise.all([exists(file), exists(start)]);
      // a folder with neither file is not a job (nothing of ours was ever written there)
      if (!hasJob && !hasStart) return;
      const damaged = e instanceof RankwiseError ? e : badInput(`cannot be read (${errorText(e)})`, file);
      let first: SavedJob;
      try {
        first = parseSavedJob(await readJobJson(start, 'the job cannot be recovered'), id, start);
      } catch (e2) {
        throw badInput(`${damaged.message}; and ${errorText(e2)}`);
      }
      // what the job last did is lost; its settings are not, so it is listed as failed and can be resumed
      const error = toErrorInfo(damaged);
      const job = this.newJob(
        { ...first.summary, state: 'failed', error, finishedAt: new Date().toISOString() },
        first.settings,
        first.cacheKey,
        first.request,
      );
      this.jobs.set(id, job);
      process.emitWarning(`Rankwise: ${error.message}`, 'RankwiseJobWarning');
      // the summary on disk is whole again, and says what happened
      await this.persist(job).catch(() => undefined);
      return;
    }
    if (saved.summary.state === 'running' || saved.summary.state === 'queued') {
      saved.summary.state = 'cancelled';
    }
    const job = this.newJob(saved.summary, saved.settings, saved.cacheKey, saved.request);
    const use = saved.cacheUse;
    // an informational count: a malformed one is dropped, never a reason to leave the job out
    if (use && Number.isInteger(use.reused) && Number.isInteger(use.fitted)) job.cacheUse = use;
    this.jobs.set(id, job);
  }

  private newJob(
    summary: JobSummary | TryRunSummary,
    settings: CompressSettings,
    key: string,
    request?: ExportRequest,
  ): Job {
    const job: Job = {
      summary,
      settings,
      cacheKey: key,
      request,
      seq: 0,
      listeners: new Set(),
      worker: null,
      cancelRequested: false,
      saving: Promise.resolve(),
      settled: Promise.resolve(),
      settle: () => undefined,
    };
    return job;
  }

  /**
   * Saves the job's summary, whole or not at all; writes are chained per job so the file always ends with
   * the latest state. The first save also writes job-start.json, the job as started, never rewritten.
   */
  private persist(job: Job, first = false): Promise<void> {
    if (job.tryTask) return Promise.resolve();
    const snapshot = JSON.stringify({
      summary: job.summary as JobSummary,
      settings: job.settings,
      cacheKey: job.cacheKey,
      request: job.request,
      cacheUse: job.cacheUse,
    } satisfies SavedJob);
    job.saving = job.saving
      .catch(() => undefined)
      .then(async () => {
        const dir = this.jobDir(job.summary.id);
        await fs.promises.mkdir(dir, { recursive: true });
        if (first) await writeFileAtomic(path.join(dir, JOB_START_FILE), snapshot);
        await writeFileAtomic(path.join(dir, JOB_FILE), snapshot);
      });
    return job.saving;
  }

  private emit(job: Job, event: DistributiveOmit<JobEvent, 'seq' | 'jobId'>): void {
    job.seq += 1;
    const e = { ...event, jobId: job.summary.id, seq: job.seq } as JobEvent;
    for (const l of job.listeners) {
      try {
        l(e);
      } catch {
        // a subscriber's failure is its own; the job and other subscribers go on
      }
    }
  }

  private setState(job: Job, state: JobState, error?: ErrorInfo): void {
    this.updateSummary(job, state, error);
    this.emit(job, { type: 'state', state, ...(error ? { error } : {}) });
    // the summary on disk only serves the recent-jobs list; a failed write must not fail the job
    this.persist(job).catch(() => undefined);
  }

  /** A run's last state: told only once the summary saying so is on disk (or its write failed). */
  private async settleState(job: Job, state: JobState, error?: ErrorInfo): Promise<void> {
    this.updateSummary(job, state, error);
    if (state === 'done' && job.summary.kind === 'compress') {
      // the worker wrote the report; a summary without its figures is still a summary
      const report = await readJobJson(path.join(this.jobDir(job.summary.id), RESULT_FILE), '').catch(
        () => null,
      );
      const outcome = outcomeOf(report);
      if (outcome) job.summary.outcome = outcome;
    }
    await this.persist(job).catch(() => undefined);
    this.emit(job, { type: 'state', state, ...(error ? { error } : {}) });
  }

  private updateSummary(job: Job, state: JobState, error?: ErrorInfo): void {
    job.summary.state = state;
    if (error) job.summary.error = error;
    else delete job.summary.error;
    if (state === 'done' || state === 'failed' || state === 'cancelled')
      job.summary.finishedAt = new Date().toISOString();
  }

  async start(
    kind: JobKind,
    jobSettings: JobSettings,
    settings: CompressSettings,
    request?: ExportRequest,
    source?: JobId,
  ): Promise<JobSummary> {
    await this.load();
    const id = randomUUID();
    const key = kind === 'compress' ? await cacheKey(settings) : (this.jobs.get(source!)?.cacheKey ?? '');
    const summary: JobSummary = {
      id,
      kind,
      state: 'queued',
      settings: jobSettings,
      createdAt: new Date().toISOString(),
      ...(source ? { source } : {}),
      ...(request ? { out: path.resolve(request.out) } : {}),
    };
    const job = this.newJob(summary, settings, key, request);
    this.jobs.set(id, job);
    await this.persist(job, true);
    this.enqueue(job);
    return { ...summary };
  }

  /**
   * Starts a Try-it run. It takes its turn in the device's queue like any job, but leaves nothing on
   * disk and is not listed: it is a preview, not work to come back to.
   */
  startTry(task: TryTask): TryRunSummary {
    const summary: TryRunSummary = {
      id: randomUUID(),
      kind: 'try',
      state: 'queued',
      createdAt: new Date().toISOString(),
    };
    const job = this.newJob(summary, { device: task.device } as CompressSettings, '');
    job.tryTask = task;
    // finished runs are kept for their results a while, not for ever (oldest first: a Map keeps order)
    const finished = [...this.jobs.values()].filter(
      (j) => j.tryTask && !j.worker && ['done', 'failed', 'cancelled'].includes(j.summary.state),
    );
    for (const old of finished.slice(0, Math.max(0, finished.length - KEPT_TRY_RUNS + 1))) {
      this.jobs.delete(old.summary.id);
    }
    this.jobs.set(summary.id, job);
    this.enqueue(job);
    return { ...summary };
  }

  private deviceOf(job: Job): string {
    return job.settings.device ?? 'cpu';
  }

  private enqueue(job: Job): void {
    job.settled = new Promise((resolve) => (job.settle = resolve));
    const device = this.deviceOf(job);
    const queue = this.queues.get(device) ?? [];
    queue.push(job.summary.id);
    this.queues.set(device, queue);
    this.emit(job, { type: 'state', state: 'queued' });
    this.pump(device);
  }

  private pump(device: string): void {
    if (this.running.has(device)) return;
    const queue = this.queues.get(device) ?? [];
    const next = queue.shift();
    if (!next) return;
    const job = this.jobs.get(next)!;
    this.running.set(device, next);
    this.run(job);
  }

  private task(job: Job): Task {
    if (job.tryTask) return job.tryTask;
    const jobDir = this.jobDir(job.summary.id);
    if (job.summary.kind === 'compress') {
      return { kind: 'compress', settings: job.settings, jobDir, cacheDir: this.cacheDir(job.cacheKey) };
    }
    const summary = job.summary as JobSummary;
    return {
      kind: 'export',
      sourceDir: this.jobDir(summary.source!),
      cacheDir: this.cacheDir(job.cacheKey),
      jobDir,
      request: job.request!,
      device: job.settings.device,
    };
  }

  private run(job: Job): void {
    // counted afresh each run: a resumed job's count says what its last run took from the cache
    if (job.summary.kind === 'compress') job.cacheUse = { reused: 0, fitted: 0 };
    this.setState(job, 'running');
    const worker = new Worker(WORKER_ENTRY, { workerData: { threads: this.opts.jobThreads } });
    job.worker = worker;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    let finished = false;
    const finish = (state: JobState, error?: ErrorInfo) => {
      if (finished) return;
      finished = true;
      void (async () => {
        // A worker runs one task and its thread ends by itself once the task settled (it reported done or
        // the error only after everything it opened was released). The job settles only once the thread
        // is gone, so a finished job holds no thread, descriptor or memory. Terminating a thread in the
        // middle of a native call (onnxruntime, the kernels) can abort the whole process, so it is forced
        // only when a thread whose task has settled still lingers after a grace period.
        const gone = await Promise.race([exited.then(() => true), sleep(EXIT_GRACE_MS).then(() => false)]);
        if (!gone) await worker.terminate().catch(() => undefined);
        job.worker = null;
        job.cancelRequested = false;
        await this.cleanup(job, state).catch(() => undefined);
        await this.settleState(job, state, error);
        this.running.delete(this.deviceOf(job));
        job.settle();
        this.pump(this.deviceOf(job));
      })();
    };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'profile' && job.cacheUse) job.cacheUse[m.cached ? 'reused' : 'fitted'] += 1;
      if (m.type === 'progress') this.emit(job, { ...m });
      else if (m.type === 'profile') this.emit(job, { ...m });
      else if (m.type === 'token') this.emit(job, { ...m });
      else if (m.type === 'log') this.emit(job, { ...m });
      else if (m.type === 'result') job.result = m.value;
      else if (m.type === 'done') finish('done');
      else if (m.type === 'error') finish(m.error.kind === 'cancelled' ? 'cancelled' : 'failed', m.error);
    });
    worker.on('error', (e) => finish('failed', toErrorInfo(e)));
    worker.on('exit', (code) => {
      if (!finished) {
        const cancelled = job.cancelRequested;
        finish(
          cancelled ? 'cancelled' : 'failed',
          cancelled
            ? { kind: 'cancelled', message: 'the job was cancelled' }
            : { kind: 'internal', message: `the job's worker stopped unexpectedly (exit code ${code})` },
        );
      }
    });
    worker.postMessage({ type: 'start', task: this.task(job) });
  }

  /**
   * A cancelled or failed export leaves no partial folder; a compress job's cache layers are whole files.
   * A temporary file in the cache is removed when its writer is gone: a process that no longer runs, or
   * this one when none of its jobs is using that cache now (another process may be writing its own).
   */
  private async cleanup(job: Job, state: JobState): Promise<void> {
    if (state === 'done') return;
    if (job.summary.kind === 'try') return;
    if (job.summary.kind === 'export' && job.summary.out) {
      // only the marked folders this process made: a user's own `<out>.partial` is never touched
      await removeOwnPartials(job.summary.out);
    }
    const cache = this.cacheDir(job.cacheKey);
    const busy = [...this.running.values()].some(
      (id) => id !== job.summary.id && this.jobs.get(id)?.cacheKey === job.cacheKey,
    );
    const names = await fs.promises.readdir(cache).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((n) => n.endsWith('.partial'))
        .filter((n) => {
          const writer = tempWriter(n);
          if (writer === null) return true;
          return writer === process.pid ? !busy : !processRuns(writer);
        })
        .map((n) => fs.promises.rm(path.join(cache, n), { force: true })),
    );
  }

  private get(id: JobId): Job {
    const job = this.jobs.get(id);
    if (!job) throw badInput(`no job with id ${id}`);
    return job;
  }

  async cancel(id: JobId): Promise<void> {
    await this.load();
    const job = this.get(id);
    if (job.summary.state === 'queued') {
      const queue = this.queues.get(this.deviceOf(job)) ?? [];
      queue.splice(queue.indexOf(id), 1);
      this.setState(job, 'cancelled', {
        kind: 'cancelled',
        message: 'the job was cancelled before it started',
      });
      job.settle();
      return;
    }
    if (job.summary.state !== 'running' || !job.worker) return;
    // the worker checks the flag between units of work (a layer, an optimiser step, a batch)
    job.cancelRequested = true;
    job.worker.postMessage({ type: 'cancel' });
    await job.settled;
  }

  async resume(id: JobId): Promise<JobSummary> {
    await this.load();
    const job = this.get(id);
    if (job.summary.state !== 'cancelled' && job.summary.state !== 'failed') {
      throw badInput(`job ${id} is ${job.summary.state}; only a cancelled or failed job can be resumed`);
    }
    const summary = job.summary;
    if (summary.kind === 'try') throw badInput('a Try-it run is not resumed; start it again');
    delete summary.finishedAt;
    await this.persist(job);
    this.enqueue(job);
    return { ...summary };
  }

  subscribe(id: JobId, listener: (e: JobEvent) => void): () => void {
    const job = this.get(id);
    job.listeners.add(listener);
    // the current state at once, so a late subscriber knows where the job is
    listener({
      type: 'state',
      jobId: id,
      seq: job.seq,
      state: job.summary.state,
      ...(job.summary.error ? { error: job.summary.error } : {}),
    });
    return () => job.listeners.delete(listener);
  }

  /** A compress or export job's summary (a Try-it run is refused: see runSummary). */
  async summary(id: JobId): Promise<JobSummary> {
    const s = await this.runSummary(id);
    if (s.kind === 'try') throw badInput(`${id} is a Try-it run, not a compress or export job`);
    return s;
  }

  /** Where a finished compress job's plan and cached layers are, for a Try-it run of its model. */
  async compressFolders(id: JobId): Promise<{ dir: string; cacheDir: string; settings: CompressSettings }> {
    const s = await this.summary(id);
    if (s.kind !== 'compress' || s.state !== 'done') {
      throw badInput(`job ${id} is not a finished compress job; try the model of one that is done`);
    }
    const job = this.get(id);
    return { dir: this.jobDir(id), cacheDir: this.cacheDir(job.cacheKey), settings: job.settings };
  }

  /** How a compress job's last run used the job cache; null before it ran (and for other kinds). */
  async cacheUse(id: JobId): Promise<CacheUse | null> {
    await this.load();
    const use = this.get(id).cacheUse;
    return use ? { ...use } : null;
  }

  async runSummary(id: JobId): Promise<JobSummary | TryRunSummary> {
    await this.load();
    return { ...this.get(id).summary };
  }

  async list(): Promise<JobSummary[]> {
    await this.load();
    return [...this.jobs.values()]
      .filter((j) => !j.tryTask)
      .map((j) => ({ ...(j.summary as JobSummary) }))
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  }

  /** The job's result file (the compress report, or the export's report). */
  async result<T>(id: JobId): Promise<T> {
    await this.load();
    const job = this.get(id);
    if (job.summary.state !== 'done') {
      throw badInput(`job ${id} is ${job.summary.state}; its result exists once it is done`);
    }
    if (job.tryTask) return job.result as T;
    const raw = await readJobJson(path.join(this.jobDir(id), RESULT_FILE), 'run the job again');
    return upgradeJobResult(raw) as T;
  }

  /** Stops every worker and lets pending summary writes land (app shutdown). */
  async close(): Promise<void> {
    await Promise.all(
      [...this.jobs.values()].map(async (j) => {
        if (j.worker) {
          // ask first: terminating a thread inside a native call can abort the process
          j.cancelRequested = true;
          j.worker.postMessage({ type: 'cancel' });
          const stopped = await Promise.race([j.settled.then(() => true), sleep(5000).then(() => false)]);
          if (!stopped) await j.worker?.terminate();
        }
        await j.saving.catch(() => undefined);
      }),
    );
  }
}

const LOST = 'its last state is lost: resume the job to run it again';

/** What job.json (and job-start.json) hold. */
interface SavedJob {
  summary: JobSummary;
  settings: CompressSettings;
  cacheKey: string;
  request?: ExportRequest;
  cacheUse?: CacheUse;
}

const JOB_STATES: readonly string[] = ['queued', 'running', 'done', 'failed', 'cancelled'];
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** job.json's fields, checked enough that a listed job is whole (a bad-input error naming the file). */
function parseSavedJob(value: Record<string, unknown>, id: string, file: string): SavedJob {
  const { summary, settings, cacheKey: key } = value;
  const bad = (what: string) => badInput(`is damaged (${what}); ${LOST}`, file);
  if (!isObject(summary)) throw bad('no summary');
  if (summary.id !== id) throw bad(`the summary is of job ${String(summary.id)}, not ${id}`);
  if (summary.kind !== 'compress' && summary.kind !== 'export') throw bad('no job kind');
  if (typeof summary.state !== 'string' || !JOB_STATES.includes(summary.state)) throw bad('no job state');
  if (!isObject(summary.settings) || typeof summary.createdAt !== 'string') throw bad('no job settings');
  if (!isObject(settings) || typeof key !== 'string') throw bad('no engine settings');
  return value as unknown as SavedJob;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function exists(p: string): Promise<boolean> {
  return fs.promises.stat(p).then(
    () => true,
    () => false,
  );
}

/** Whether a process with this id runs (one we may not signal still runs). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
