/**
 * What a finished compression answers (`getResult`) and what an export writes as `rankwise-report.json`
 * (`getExportReport`; ARCHITECTURE.md §7). The HTML report renders exactly this object, so the two never
 * disagree. Every key is camelCase.
 */
import type { KeySpace, MethodId } from '../core/kv.ts';
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
  evalWindows: number;
  device: string;
  perplexity: { original: number; compressed: number };
  kvBytesPerToken: { original: number; compressed: number };
  kvFraction: number;
  layers: CompressedLayerReport[];
  /** Per layer, its measured grid (jobs that allocate). */
  profile?: ProfilePoint[][];
  allocation?: { kind: string; target: number; feasible: boolean; reason?: string; weightedError: number };
  /** StiefAttention: optimiser steps over all layers and both phases, and their wall time. */
  training?: { steps: number; seconds: number; secondsPerLayerStep: number };
  /** Wall time per stage (load, capture, profile, train, allocate, eval). */
  seconds: Record<string, number>;
}

export const REPORT_FORMAT = 'rankwise-report';
/** 2: every key camelCase (version 1 had snake_case keys in `compress`). */
export const REPORT_VERSION = 2;

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
  tolerance: number;
  passed: boolean;
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
  /** The compression job: settings, per-layer ranks and errors, profiles, perplexities, timings. */
  compress: CompressReport;
  memory: MemoryTable;
  export: {
    dir: string;
    files: ExportedFile[];
    seconds: Record<string, number>;
    verification: VerificationReport;
  };
}
