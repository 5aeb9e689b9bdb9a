/**
 * The job manager: jobs run in worker threads (the main thread only routes messages, so it never
 * blocks), one at a time per device with a queue, with events numbered in order, cancel honoured by the
 * worker between units of work, results and summaries on disk so
 * recent jobs survive a restart, and a job cache that lets a re-run or resumed job skip finished layers.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

import type {
  ExportRequest,
  JobEvent,
  JobId,
  JobKind,
  JobSettings,
  JobState,
  JobSummary,
  TryRunSummary,
} from '../api/contract.ts';
import { badInput, toErrorInfo, type ErrorInfo } from '../api/errors.ts';
import type { CompressSettings } from './compress.ts';
import { cacheKey, JOB_FILE, RESULT_FILE } from './job-files.ts';
import type { FromWorker, Task, TryTask } from './messages.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Job {
  summary: JobSummary | TryRunSummary;
  /** Engine settings (paths resolved). */
  settings: CompressSettings;
  cacheKey: string;
  request?: ExportRequest;
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

export interface JobManagerOptions {
  /** Where job folders and the job cache live. */
  dir: string;
}

const WORKER_ENTRY = new URL('./worker-entry.mjs', import.meta.url);

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

  /** Recent jobs from earlier sessions; a job that was running when the app stopped reads as cancelled. */
  private load(): Promise<void> {
    this.loaded ??= (async () => {
      const root = path.join(this.opts.dir, 'jobs');
      const ids = await fs.promises.readdir(root).catch(() => [] as string[]);
      for (const id of ids) {
        try {
          const saved = JSON.parse(await fs.promises.readFile(path.join(root, id, JOB_FILE), 'utf8')) as {
            summary: JobSummary;
            settings: CompressSettings;
            cacheKey: string;
            request?: ExportRequest;
          };
          if (saved.summary.state === 'running' || saved.summary.state === 'queued') {
            saved.summary.state = 'cancelled';
          }
          this.jobs.set(id, this.newJob(saved.summary, saved.settings, saved.cacheKey, saved.request));
        } catch {
          // a folder without a readable job.json is not a job (or was half-written by a crash)
        }
      }
    })();
    return this.loaded;
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

  /** Saves the job's summary; writes are chained per job so the file always ends with the latest state. */
  private persist(job: Job): Promise<void> {
    if (job.tryTask) return Promise.resolve();
    const snapshot = JSON.stringify({
      summary: job.summary,
      settings: job.settings,
      cacheKey: job.cacheKey,
      request: job.request,
    });
    job.saving = job.saving
      .catch(() => undefined)
      .then(async () => {
        const dir = this.jobDir(job.summary.id);
        await fs.promises.mkdir(dir, { recursive: true });
        const file = path.join(dir, JOB_FILE);
        await fs.promises.writeFile(`${file}.partial`, snapshot);
        await fs.promises.rename(`${file}.partial`, file);
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
    job.summary.state = state;
    if (error) job.summary.error = error;
    else delete job.summary.error;
    if (state === 'done' || state === 'failed' || state === 'cancelled')
      job.summary.finishedAt = new Date().toISOString();
    this.emit(job, { type: 'state', state, ...(error ? { error } : {}) });
    // the summary on disk only serves the recent-jobs list; a failed write must not fail the job
    this.persist(job).catch(() => undefined);
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
    await this.persist(job);
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
    this.setState(job, 'running');
    const worker = new Worker(WORKER_ENTRY);
    job.worker = worker;
    let finished = false;
    const finish = (state: JobState, error?: ErrorInfo) => {
      if (finished) return;
      finished = true;
      job.cancelRequested = false;
      job.worker = null;
      // the worker ends by itself once its task settled; terminating a thread in the middle of a native
      // call (onnxruntime, the kernels) can abort the whole process, so it is never forced here
      void this.cleanup(job, state).finally(() => {
        this.setState(job, state, error);
        this.running.delete(this.deviceOf(job));
        job.settle();
        this.pump(this.deviceOf(job));
      });
    };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'progress') this.emit(job, { ...m });
      else if (m.type === 'profile') this.emit(job, { ...m });
      else if (m.type === 'token') this.emit(job, { ...m });
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

  /** A cancelled or failed export leaves no partial folder; a compress job's cache layers are whole files. */
  private async cleanup(job: Job, state: JobState): Promise<void> {
    if (state === 'done') return;
    if (job.summary.kind === 'try') return;
    if (job.summary.kind === 'export' && job.summary.out) {
      await fs.promises.rm(`${job.summary.out}.partial`, { recursive: true, force: true });
    }
    const cache = this.cacheDir(job.cacheKey);
    const names = await fs.promises.readdir(cache).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((n) => n.endsWith('.partial'))
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
    return JSON.parse(await fs.promises.readFile(path.join(this.jobDir(id), RESULT_FILE), 'utf8')) as T;
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
