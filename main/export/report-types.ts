/**
 * What `rankwise-report.json` holds (ARCHITECTURE.md §7). The HTML report renders exactly this object,
 * so the two never disagree.
 */
import type { CompressReport } from '../jobs/compress.ts';
import type { ModelInfo } from '../model/types.ts';

export const REPORT_FORMAT = 'rankwise-report';
export const REPORT_VERSION = 1;

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
