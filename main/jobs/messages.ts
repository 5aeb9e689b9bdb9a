/**
 * What the job manager and a job's worker thread say to each other (structured-clone data only).
 */
import type { ErrorInfo } from '../core/errors.ts';
import type { ExportRequest, JobEvent, RankOverride } from '../contract/api.ts';
import type { TryRunRequest } from '../generate/try-run.ts';
import type { TrySource } from '../generate/decoder.ts';
import type { CompressSettings } from './compress.ts';

export interface CompressTask {
  kind: 'compress';
  settings: CompressSettings;
  /** The job's folder: result.json and plan.json land here. */
  jobDir: string;
  /** The job cache's folder for these settings (finished layers). */
  cacheDir: string;
}

export interface ExportTask {
  kind: 'export';
  /** The compress job's folder and cache. */
  sourceDir: string;
  cacheDir: string;
  jobDir: string;
  request: ExportRequest;
  device?: CompressSettings['device'];
}

/** A Try-it model as the worker opens it: a folder, or a compress job's plan at some ranks. */
export type TryTaskModel =
  | Extract<TrySource, { dir: string }>
  | { job: { dir: string; cacheDir: string; ranks?: RankOverride[]; label: string } };

export interface TryTask extends Omit<TryRunRequest, 'model' | 'compare'> {
  kind: 'try';
  model: TryTaskModel;
  compare?: TryTaskModel;
  device?: CompressSettings['device'];
}

export type Task = CompressTask | ExportTask | TryTask;

export type ToWorker = { type: 'start'; task: Task } | { type: 'cancel' };

type Without<E, K extends PropertyKey> = E extends unknown ? Omit<E, K> : never;

/** A worker's progress and profile events are the job's events before the manager numbers them. */
export type FromWorker =
  | Without<Extract<JobEvent, { type: 'progress' | 'profile' | 'token' | 'log' }>, 'jobId' | 'seq'>
  /** A Try-it run's result, kept in memory by the manager (Try-it runs write nothing). */
  | { type: 'result'; value: unknown }
  | { type: 'done' }
  | { type: 'error'; error: ErrorInfo };
