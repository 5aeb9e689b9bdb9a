/**
 * What a finished compression answers (`getResult`) and what an export writes as `rankwise-report.json`
 * (`getExportReport`; ARCHITECTURE.md §7). The HTML report renders exactly this object, so the two never
 * disagree. Every key is camelCase.
 */
import type { KeySpace, MethodId, Objective } from '../core/kv.ts';
import type { ModelInfo } from './model.ts';

/** Where key projections act, as a job asks for it: a space, or `auto` (per layer, the lower error). */
export type KeySpaceSetting = KeySpace | 'auto';

/** One measured point of a layer's error-rank profile. */
export interface ProfilePoint {
  /** Key rank per KV head, 1 ≤ kRank ≤ d. */
  kRank: number;
  /** Value rank per KV head, 1 ≤ vRank ≤ d. */
  vRank: number;
  /** Relative decoder-layer output error E(kRank, vRank) ≥ 0, measured on held-out data. */
  error: number;
}

/** One probe of a layer's end-to-end effect: its compression alone at (kRank, vRank). */
export interface EffectProbeReport extends ProfilePoint {
  /** The model's mean next-token NLL change, nats per token. */
  effect: number;
}

export interface LayerEffectReport {
  layer: number;
  probes: EffectProbeReport[];
}

/** What fine-tuning did to each compressed layer; losses are ℒ = ‖Ŷ − Y‖²/‖Y‖² of the layer's output. */
export interface FinetuneReport {
  /** Steps per layer asked for, and the learning rate. */
  steps: number;
  lr: number;
  trainWindows: number;
  layers: {
    layer: number;
    /** Steps run (early stopping may end sooner). */
    steps: number;
    stopped: 'steps' | 'no-improvement' | 'diverged' | 'not-trainable';
    /** The step whose parameters were kept: 0 is the method's own fit. */
    bestStep: number;
    heldoutLoss: { start: number; best: number };
    /** On the training windows, at the first step and at the last; null when nothing was trained. */
    trainLoss: { start: number; last: number } | null;
  }[];
  seconds: number;
  /** Layers whose training diverged or could not run, and which iterate each kept. */
  warnings: string[];
}

export interface CompressedLayerReport {
  layer: number;
  kRank: number;
  vRank: number;
  keySpace: KeySpace;
  /** Relative decoder-layer output error at the chosen ranks, on the held-out calibration windows. */
  error: number;
}

export interface CompressReport {
  model: string;
  method: MethodId;
  keySpace: KeySpaceSetting;
  window: number;
  calibWindows: number;
  heldoutWindows: number;
  /** Positions of each held-out window the profile compared (absent in reports from before it sampled). */
  profileTokens?: number;
  evalWindows: number;
  device: string;
  perplexity: { original: number; compressed: number };
  kvBytesPerToken: { original: number; compressed: number };
  kvFraction: number;
  layers: CompressedLayerReport[];
  /** Per layer, its measured grid (jobs that allocate). */
  profile?: ProfilePoint[][];
  /**
   * `kind`: memory (target = the fraction of the cache kept), budget (target = the mean layer error
   * allowed) or perplexity (target = the perplexity increase allowed, a fraction).
   */
  allocation?: { kind: string; target: number; feasible: boolean; reason?: string; weightedError: number };
  /** What the allocator minimised (jobs that allocate; absent before the end-to-end objective existed). */
  objective?: Objective;
  /**
   * End-to-end objective: per layer, its probes (that layer alone compressed at a pair, the model's mean
   * NLL change on the held-out windows), from which the effect of every profile point is predicted.
   */
  effects?: LayerEffectReport[];
  /**
   * End-to-end objective: the chosen allocation's NLL increase predicted for the evaluation text (measured
   * whole on the calibration windows, carried over by token difficulty) and the perplexity it predicts.
   */
  predicted?: { nllIncrease: number; perplexity: number };
  /** Fine-tuning of the allocated layers' projections (jobs that asked for it). */
  finetune?: FinetuneReport;
  /** StiefAttention: optimiser steps over all layers and both phases, and their wall time. */
  training?: { steps: number; seconds: number; secondsPerLayerStep: number };
  /** Wall time per stage (load, capture, profile, train, allocate, eval). */
  seconds: Record<string, number>;
}

export const REPORT_FORMAT = 'rankwise-report';
/**
 * 2: every key camelCase (version 1 had snake_case keys in `compress`). 3: `compress` describes the
 * exported model (its layers' ranks and cache as written, an error that may be null), the job's own
 * allocation moved to `compress.jobAllocation`, the layers that differ listed in `compress.edits`.
 */
export const REPORT_VERSION = 3;

/** A layer as exported: its ranks and key space as config.json's `kv_compression` holds them. */
export interface ExportedLayerReport extends Omit<CompressedLayerReport, 'error'> {
  /**
   * The job's measured error at these ranks: its own figure where the layer kept the job's ranks, else
   * the profile's point at them; null when the ranks were set by hand to a point the job never measured.
   */
  error: number | null;
}

/** A layer whose exported ranks differ from the job's allocation (set by hand, or re-allocated, in review). */
export interface RankEdit {
  layer: number;
  job: { kRank: number; vRank: number };
  exported: { kRank: number; vRank: number };
}

/** The compress job's own allocation and what the job measured of it, kept beside an export that differs. */
export interface JobAllocation {
  layers: CompressedLayerReport[];
  kvBytesPerToken: { original: number; compressed: number };
  kvFraction: number;
  /** The job's evaluation, of its in-memory model at these ranks. */
  perplexity: { original: number; compressed: number };
}

/**
 * The compression as exported: the job's settings, timings, profiles and allocator record, with the
 * per-layer ranks, cache and compressed perplexity of the files written (which hand edits may have
 * changed from the job's allocation).
 */
export interface ExportedCompressReport extends Omit<CompressReport, 'layers'> {
  layers: ExportedLayerReport[];
  /** Written by every export since version 3; filled from `compress` when an older report is read. */
  jobAllocation?: JobAllocation;
  /** Empty when the export is the job's allocation; absent in reports before version 3 (not recorded). */
  edits?: RankEdit[];
}

/** One row of the memory table: a context length, and the cache of one sequence before and after. */
export interface MemoryRow {
  tokens: number;
  kvBytesOriginal: number;
  kvBytesCompressed: number;
}

/** How many sequences of `contextTokens` fit beside the weights in `memoryBytes`, before and after. */
export interface Concurrency {
  memoryBytes: number;
  contextTokens: number;
  sequencesOriginal: number;
  sequencesCompressed: number;
}

export interface MemoryTable {
  /** At the checkpoint's dtype. */
  kvBytesPerToken: { original: number; compressed: number };
  perSequence: MemoryRow[];
  /** Bytes of the weights in the checkpoint files (original) and in the exported ones. */
  weightsBytes: { original: number; compressed: number };
  /** Weights + the cache of `batch` sequences of `contextTokens` each. */
  totals: { contextTokens: number; batch: number; original: number; compressed: number };
  concurrency: Concurrency;
}

export interface VerificationReport {
  /** Held-out windows run through the reloaded checkpoint. */
  windows: number;
  /** max |Δlogit| / max |logit| between the reloaded checkpoint and the in-memory compressed model. */
  checkpointRelError: number;
  /** The same for the ONNX decoder run with its KV cache (prefill, then token by token). */
  onnxRelError: number;
  onnxPrefillTokens: number;
  onnxDecodeSteps: number;
  /** Perplexity of the reloaded checkpoint on the verification windows, and of the in-memory model. */
  perplexity: { reloaded: number; inMemory: number };
  /** Bytes of the ONNX `present` tensors after the verification run, and what the layout predicts. */
  presentBytes: { measured: number; predicted: number };
  /** Of checkpointRelError; onnxRelError's is `onnx.tolerance` (the same for a float32 decoder). */
  tolerance: number;
  /** The ONNX decoder as written and run (absent without ONNX, and in reports before it was added). */
  onnx?: OnnxVerification;
  passed: boolean;
}

export interface OnnxVerification {
  /** Element type of the past/present cache tensors. */
  cacheDtype: 'float32' | 'float16';
  /** How the weights are stored in the file (computation is float32 either way). */
  weightsDtype: 'float32' | 'float16' | 'bfloat16';
  /** Of onnxRelError: looser for a 16-bit cache, whose rounding the in-memory model does not share. */
  tolerance: number;
  /**
   * The cache per token: measured (the `present` outputs' bytes over the tokens they hold) and the
   * original, uncompressed model's at the checkpoint's own dtype, so their ratio is the real saving.
   */
  cacheBytesPerToken: { measured: number; original: number };
}

/** The written checkpoint evaluated as `rankwise eval` evaluates a folder, on the job's evaluation windows. */
export interface ExportEvaluation {
  windows: number;
  window: number;
  /** The exported files' perplexity: the report's `compress.perplexity.compressed`. */
  perplexity: number;
  /**
   * The compress job's own figure, from its in-memory model at the job's allocation (before folding,
   * rounding to the dtype and any hand edit): `compress.jobAllocation.perplexity.compressed`.
   */
  inMemory: number;
}

export interface ExportedFile {
  name: string;
  bytes: number;
}

export interface ReportData {
  format: typeof REPORT_FORMAT;
  version: typeof REPORT_VERSION;
  /** ISO time the export finished. */
  created: string;
  model: { dir: string; info: ModelInfo };
  /**
   * The compression as exported: settings, per-layer ranks and errors, profiles, perplexities, timings.
   * Its layers, cache and compressed perplexity are the exported files'; the job's own are in
   * `compress.jobAllocation`.
   */
  compress: ExportedCompressReport;
  memory: MemoryTable;
  export: {
    dir: string;
    files: ExportedFile[];
    seconds: Record<string, number>;
    verification: VerificationReport;
    /** Absent in reports before it was added. */
    evaluation?: ExportEvaluation;
  };
}
