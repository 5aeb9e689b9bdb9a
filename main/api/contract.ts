/**
 * The one contract between the engine and its faces (ARCHITECTURE.md §1): the Electron preload exposes it
 * as `window.rankwise`, the browser-mode server speaks it over a WebSocket, and the engine implements it
 * in-process. Everything here is plain data (structured-clone and JSON safe); the renderer imports these
 * types and nothing else from main/.
 */
import type { ErrorInfo } from '../core/errors.ts';
import type { CompressReport, KeySpaceSetting } from '../jobs/compress.ts';
import type { ReportData } from '../export/report-types.ts';
import type { MethodId } from '../core/kv.ts';
import type { ModelInfo } from '../model/types.ts';
import type { TryRunResult, TryToken } from '../generate/try-run.ts';

export type { ErrorInfo } from '../core/errors.ts';
export type { CompressReport } from '../jobs/compress.ts';
export type { ReportData } from '../export/report-types.ts';
export type { MethodId } from '../core/kv.ts';
export type { ModelInfo } from '../model/types.ts';
export type {
  TryPromptResult,
  TryRunResult as TryResult,
  TrySide,
  TrySideResult,
  TryToken,
} from '../generate/try-run.ts';
export type { Comparison } from '../generate/compare.ts';

export type JobId = string;

/** A text the job reads: a file the user chose, or one of the project's built-in demo texts. */
export type DataSource = { path: string } | { builtin: 'demo-calibration' | 'demo-evaluation' };

/** `inspect`: the architecture card of a model folder. */
export interface ModelCard extends ModelInfo {
  dir: string;
}

export interface DataPreviewRequest {
  model: string;
  source: DataSource;
  /** Window length in tokens. */
  window: number;
}

/** What a calibration or evaluation text holds, before anything runs. */
export interface DataPreview {
  /** Absolute path of the file (the built-in texts resolve to theirs). */
  path: string;
  bytes: number;
  tokens: number;
  /** Full windows of `window` tokens the text gives (a last partial window is dropped). */
  windows: number;
  window: number;
  /** The first few hundred characters, decoded from the first window's tokens. */
  sample: string;
  /** A few beginnings of the text's paragraphs, to offer as prompts in Try it. */
  promptSuggestions: string[];
}

/** A compression job's settings: the CLI's `compress` options as data. */
export interface JobSettings {
  model: string;
  calib: DataSource;
  eval: DataSource;
  method: MethodId;
  /** Exactly one of ranks, budget, kvFraction. Ranks are per KV head. */
  ranks?: { k: number; v: number };
  budget?: number;
  kvFraction?: number;
  keySpace?: KeySpaceSetting;
  window?: number;
  calibWindows?: number;
  evalWindows?: number;
  seed?: number;
  layerWeights?: number[];
  /** StiefAttention training. */
  stief?: { steps?: number; lr?: number; trainWindows?: number };
  device?: 'cpu' | 'auto' | 'cuda' | 'dml' | 'coreml' | 'webgpu';
}

/** Pre-flight figures: what the job will need, and whether this machine has it. */
export interface JobEstimate {
  /** Peak resident memory the job should need, bytes. */
  memoryBytes: number;
  /** Memory the machine has free for it now, bytes. */
  availableBytes: number;
  fits: boolean;
  /** Expected wall time, seconds (from measured throughput on this machine; rough). */
  seconds: number;
  /** What the memory figure is made of, bytes. */
  breakdown: { weights: number; activations: number; statistics: number; runtime: number };
}

export type JobKind = 'compress' | 'export';
export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobSummary {
  id: JobId;
  kind: JobKind;
  state: JobState;
  /** The compress job's settings (for an export, those of the job it exports). */
  settings: JobSettings;
  /** For an export: the compress job exported and the destination. */
  source?: JobId;
  out?: string;
  createdAt: string;
  finishedAt?: string;
  error?: ErrorInfo;
}

/**
 * A Try-it run: a job of its own kind that streams `token` events, stops with cancelJob, and is neither
 * kept on disk nor listed among recent jobs.
 */
export interface TryRunSummary {
  id: JobId;
  kind: 'try';
  state: JobState;
  createdAt: string;
  finishedAt?: string;
  error?: ErrorInfo;
}

export interface ProfilePoint {
  kRank: number;
  vRank: number;
  error: number;
}

/** What a job tells its subscribers, in order; `seq` rises by one per event of the job. */
export type JobEvent =
  | { type: 'state'; jobId: JobId; seq: number; state: JobState; error?: ErrorInfo }
  | {
      type: 'progress';
      jobId: JobId;
      seq: number;
      stage: string;
      /** Layer being worked on, −1 for work that is not per layer. */
      layer: number;
      /** Optimiser step (StiefAttention training), when the stage has steps. */
      step?: number;
      done: number;
      total: number;
      etaSeconds: number | null;
      /** Resident memory of the engine process, bytes. */
      memoryBytes: number;
    }
  | {
      type: 'profile';
      jobId: JobId;
      seq: number;
      layer: number;
      keySpace: string;
      points: ProfilePoint[];
      /** True when the layer came from the job cache rather than being computed now. */
      cached: boolean;
    }
  | { type: 'log'; jobId: JobId; seq: number; message: string }
  | ({ type: 'token'; jobId: JobId; seq: number } & TryToken);

export interface RankOverride {
  layer: number;
  kRank: number;
  vRank: number;
}

/** Re-allocation of a finished job's profiles: a new budget or memory target, and/or fixed layers. */
export interface ReallocateRequest {
  jobId: JobId;
  budget?: number;
  kvFraction?: number;
  overrides?: RankOverride[];
  layerWeights?: number[];
}

export interface Allocation {
  layers: { layer: number; kRank: number; vRank: number; error: number }[];
  kvBytesPerToken: { original: number; compressed: number };
  kvFraction: number;
  weightedError: number;
  feasible: boolean;
  reason?: string;
}

export interface ExportRequest {
  jobId: JobId;
  out: string;
  force?: boolean;
  onnx?: boolean;
  /** Export these ranks instead of the job's own allocation (from `reallocate`). */
  ranks?: RankOverride[];
}

/** What Try it runs: a model folder (original or a Rankwise export), or a finished compress job's model. */
export type TryModel = { dir: string } | { jobId: JobId; ranks?: RankOverride[] };

/** A Try-it run: one prompt through a model and, side by side, the model it is compared with. */
export interface TryRequest {
  model: TryModel;
  /** Usually the original model's folder: same prompt, same settings, and a comparison of the two. */
  compare?: TryModel;
  prompt: string;
  /** Default 128. */
  maxNewTokens?: number;
  /** Absent or 0: greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/** A folder listing for browser mode's path field (only inside the folders the server was given). */
export interface DirectoryListing {
  dir: string;
  parent: string | null;
  entries: { name: string; path: string; kind: 'dir' | 'file'; bytes?: number }[];
}

export type PathPurpose = 'model' | 'data' | 'export';

export type Unsubscribe = () => void;

export interface RankwiseApi {
  inspect(modelDir: string): Promise<ModelCard>;
  previewData(req: DataPreviewRequest): Promise<DataPreview>;
  estimate(settings: JobSettings): Promise<JobEstimate>;
  startJob(settings: JobSettings): Promise<JobSummary>;
  cancelJob(id: JobId): Promise<void>;
  /** Starts a cancelled or failed job again; layers it finished come from the job cache. */
  resumeJob(id: JobId): Promise<JobSummary>;
  /** Events from now on (and the job's current state at once). */
  subscribe(id: JobId, listener: (event: JobEvent) => void): Unsubscribe;
  getResult(id: JobId): Promise<CompressReport>;
  reallocate(req: ReallocateRequest): Promise<Allocation>;
  /** Starts an export job of a finished compress job; its result is the report. */
  exportJob(req: ExportRequest): Promise<JobSummary>;
  getExportReport(id: JobId): Promise<ReportData>;
  listJobs(): Promise<JobSummary[]>;
  /** Starts a Try-it run (a job of kind `try`): `token` events stream, cancelJob stops it. */
  startTry(req: TryRequest): Promise<TryRunSummary>;
  getTryResult(id: JobId): Promise<TryRunResult>;
  /** Desktop: a native dialog; browser mode: null (the renderer browses instead). */
  choosePath(purpose: PathPurpose): Promise<string | null>;
  browse(dir?: string): Promise<DirectoryListing>;
}

/** The API's method names, for hosts that wire each one (IPC handlers, the WebSocket dispatcher). */
export const API_METHODS = [
  'inspect',
  'previewData',
  'estimate',
  'startJob',
  'cancelJob',
  'resumeJob',
  'subscribe',
  'getResult',
  'reallocate',
  'exportJob',
  'getExportReport',
  'listJobs',
  'startTry',
  'getTryResult',
  'choosePath',
  'browse',
] as const satisfies readonly (keyof RankwiseApi)[];

export type ApiMethod = (typeof API_METHODS)[number];

/** Every method but subscribe is request → response. */
export type RequestMethod = Exclude<ApiMethod, 'subscribe'>;

/** A reply that carries the engine's error as data (Electron's bridge keeps only an Error's message). */
export type Envelope<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };

/**
 * `window.rankwise` on the desktop: RankwiseApi with every request answering an Envelope instead of
 * throwing, so the error kind survives contextBridge; renderer/transport/ipc.ts turns it back into a
 * RankwiseApi.
 */
export type BridgeApi = {
  [M in RequestMethod]: (
    ...args: Parameters<RankwiseApi[M]>
  ) => Promise<Envelope<Awaited<ReturnType<RankwiseApi[M]>>>>;
} & { subscribe: RankwiseApi['subscribe'] };
