/**
 * The types RankwiseApi's calls carry (ARCHITECTURE.md §1): requests, answers and job events. Everything
 * here is plain data (structured-clone and JSON safe) in one casing, camelCase. The methods themselves
 * (names, argument schemas, results, events) are the manifest's (manifest.ts), from which RankwiseApi,
 * every host and both renderer transports are derived.
 */
import type { ErrorInfo } from '../core/errors.ts';
import type { Reallocation } from '../core/allocate/reallocate.ts';
import type { MethodId, Objective } from '../core/kv.ts';
import type { KeySpaceSetting, ProfilePoint } from './report.ts';
import type { TryToken } from './try.ts';

export type JobId = string;

/** Devices a job may ask for (runtime/engine.ts's DEVICES: a test keeps them equal). */
export const DEVICES = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];

export const KEY_SPACE_SETTINGS = [
  'pre-rope',
  'post-rope',
  'folded',
  'thin-rope',
  'auto',
] as const satisfies readonly KeySpaceSetting[];

/**
 * Element types an export's ONNX decoder may keep its cache and weights in: `auto` is the checkpoint's
 * 16-bit type (float16 for F16 and BF16: onnxruntime-node passes no bfloat16 tensors) or float32.
 */
export const ONNX_DTYPES = ['auto', 'float32', 'float16'] as const;
export type OnnxDtype = (typeof ONNX_DTYPES)[number];

/** The project's own demo texts, which every face may name without a path. */
export const BUILTIN_TEXTS = ['demo-calibration', 'demo-evaluation'] as const;
export type BuiltinText = (typeof BUILTIN_TEXTS)[number];

/** What a native dialog (choosePath) is asked for. */
export const PATH_PURPOSES = ['model', 'data', 'export'] as const;
export type PathPurpose = (typeof PATH_PURPOSES)[number];

/** A text the job reads: a file the user chose, or one of the project's built-in demo texts. */
export type DataSource = { path: string } | { builtin: BuiltinText };

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

/**
 * StiefAttention's key bases: one per layer shared by the KV heads (the paper's), one per KV head, or both
 * trained and, at every grid pair, the lower kept.
 */
export const STIEF_KEY_SHARINGS = ['shared', 'per-head', 'auto'] as const;
export type StiefKeySharing = (typeof STIEF_KEY_SHARINGS)[number];

/**
 * The order StiefAttention trains its sides in: keys then values, each against the other uncompressed; the
 * same two phases, each against the other compressed; or both sides at every step.
 */
export const STIEF_SCHEDULES = ['sequential', 'alternate', 'joint'] as const;
export type StiefSchedule = (typeof STIEF_SCHEDULES)[number];

/** StiefAttention's training, as a job asks for it. */
export interface StiefTraining {
  steps?: number;
  lr?: number;
  trainWindows?: number;
  keys?: StiefKeySharing;
  schedule?: StiefSchedule;
}

/** Fine-tuning of the compressed key and value projections, as a job asks for it. */
export interface FinetuneRequest {
  /** Optimiser steps per layer, at least 1. */
  steps: number;
  lr?: number;
}

/** A compression job's settings: the CLI's `compress` options as data. */
export interface JobSettings {
  model: string;
  calib: DataSource;
  eval: DataSource;
  method: MethodId;
  /** Exactly one of ranks, budget, kvFraction, maxPplIncrease. Ranks are per KV head. */
  ranks?: { k: number; v: number };
  budget?: number;
  kvFraction?: number;
  /** The perplexity increase accepted, a fraction (0.05: 5 %): the smallest cache predicted to stay within it. */
  maxPplIncrease?: number;
  /** What the allocation minimises: each layer's end-to-end effect (default) or its output error. */
  objective?: Objective;
  /** A short fine-tuning of every layer's compressed projections after the fit (methods/finetune.ts). */
  finetune?: FinetuneRequest;
  keySpace?: KeySpaceSetting;
  window?: number;
  calibWindows?: number;
  evalWindows?: number;
  seed?: number;
  layerWeights?: number[];
  stief?: StiefTraining;
  device?: Device;
  /** Calibration windows held out to measure layer errors (default a quarter of them, 1…8). */
  heldoutWindows?: number;
  /** Positions of each held-out window the error-rank profile compares (default: all on a narrow model, 32 from hidden size 512 up). */
  profileTokens?: number;
  /** Which calibration windows: the first ones (default) or a seeded random draw. */
  calibSampling?: 'first' | 'random';
  /** How ranks are chosen under a budget: the exact knapsack (default), or EigenAttention's own sweep. */
  allocator?: 'knapsack' | 'sweep';
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
  /** A finished compress job's figures, so recent jobs can be told apart (absent on older jobs). */
  outcome?: JobOutcome;
}

/** What a finished compress job achieved, as its report says. */
export interface JobOutcome {
  /** Share of the original KV cache kept, in (0, 1]. */
  kvFraction: number;
  perplexity: { original: number; compressed: number };
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

export type JobEventType = JobEvent['type'];

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
  /** For an end-to-end job: the perplexity increase accepted, a fraction. */
  maxPplIncrease?: number;
  overrides?: RankOverride[];
  /** With overrides: re-allocate the other layers to meet the target, the overridden ones held fixed. */
  refit?: boolean;
  layerWeights?: number[];
}

/** `reallocate`'s answer: the allocator's own result (main/core/allocate, which the wizard runs too). */
export type Allocation = Reallocation;

export interface ExportRequest {
  jobId: JobId;
  out: string;
  force?: boolean;
  onnx?: boolean;
  /** The ONNX decoder's cache and weight type (default `auto`). */
  onnxDtype?: OnnxDtype;
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

/** A model folder found on this machine, offered as a pick in the model step (listModels). */
export interface LocalModel {
  /** The folder to inspect: a Hugging Face cache snapshot, or a folder a recent job compressed. */
  path: string;
  /** `org/name` for a Hugging Face cache entry; the folder's name otherwise. */
  name: string;
  /** The snapshot's revision (the Hugging Face cache's commit hash). */
  revision?: string;
  /** When the snapshot was written, or when the recent job started (ISO 8601). */
  at?: string;
}

/** The model folders this machine offers: the Hugging Face cache's snapshots and recent jobs' models. */
export interface LocalModels {
  /** The model shipped with Rankwise (stories260K): the wizard's default; null if the install lacks it. */
  bundled: LocalModel | null;
  /** The hub cache folder that was scanned, or null when there is none. */
  hubCache: string | null;
  /** Newest snapshot first. */
  huggingFace: LocalModel[];
  /** Most recent job first, each folder once. */
  recent: LocalModel[];
  /** Browser mode: entries left out because they lie outside the folders the server may use. */
  hidden?: number;
}

export type Unsubscribe = () => void;

/** A reply that carries the engine's error as data (Electron's bridge keeps only an Error's message). */
export type Envelope<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };
