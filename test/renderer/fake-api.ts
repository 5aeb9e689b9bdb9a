/**
 * A RankwiseApi with canned answers and scripted job events, for rendering the wizard without an
 * engine. Every method is a vi.fn, so tests both script it and check how it was called.
 */
import { vi, type Mock } from 'vitest';
import type {
  Allocation,
  CompressReport,
  DataPreview,
  DataPreviewRequest,
  ExportRequest,
  JobEvent,
  JobSettings,
  JobState,
  JobSummary,
  ModelCard,
  RankwiseApi,
  ReallocateRequest,
  ReportData,
} from '../../main/api/contract.ts';

export const LAYERS = 4;
export const HEAD_DIM = 32;
export const KV_HEADS = 4;
export const RANKS = [4, 8, 12, 16, 20, 24, 28, 32];
/** Bytes per token per unit of rank of one layer (all its KV heads, F32). */
export const UNIT = KV_HEADS * 4;
export const ORIGINAL_PER_TOKEN = 2 * LAYERS * HEAD_DIM * UNIT;

export const CARD: ModelCard = {
  dir: '/models/tiny-llama',
  modelType: 'llama',
  family: 'llama',
  layers: LAYERS,
  heads: 8,
  kvHeads: KV_HEADS,
  headDim: HEAD_DIM,
  hiddenSize: 256,
  vocabSize: 512,
  maxPositions: 1024,
  rope: 10000,
  dtype: 'F32',
  parameters: 3_500_000,
  kvBytesPerToken: ORIGINAL_PER_TOKEN,
  kvBytesPerSequence: [4096, 32768, 131072].map((tokens) => ({ tokens, bytes: tokens * ORIGINAL_PER_TOKEN })),
};

/** A smooth profile: error halves with every extra eighth of each side, smaller in later layers. */
export function profileError(layer: number, k: number, v: number): number {
  if (k === HEAD_DIM && v === HEAD_DIM) return 0;
  return (0.2 / (layer + 1)) * (2 ** -(k / 4) + 2 ** -(v / 4));
}

export function profilePoints(layer: number) {
  return RANKS.flatMap((k) => RANKS.map((v) => ({ kRank: k, vRank: v, error: profileError(layer, k, v) })));
}

export const CHOSEN = [
  { k: 8, v: 16 },
  { k: 12, v: 16 },
  { k: 16, v: 20 },
  { k: 8, v: 12 },
];

export function compressReport(method: JobSettings['method'] = 'kqsvd'): CompressReport {
  const compressed = CHOSEN.reduce((s, c) => s + (c.k + c.v) * UNIT, 0);
  return {
    model: CARD.dir,
    method,
    key_space: 'auto',
    window: 128,
    calib_windows: 8,
    heldout_windows: 2,
    eval_windows: 4,
    device: 'cpu',
    perplexity: { original: 20, compressed: method === 'kqsvd' ? 20.5 : 21.5 },
    kv_bytes_per_token: { original: ORIGINAL_PER_TOKEN, compressed },
    kv_fraction: compressed / ORIGINAL_PER_TOKEN,
    layers: CHOSEN.map((c, layer) => ({
      layer,
      k_rank: c.k,
      v_rank: c.v,
      key_space: 'pre-rope',
      error: profileError(layer, c.k, c.v),
    })),
    profile: CHOSEN.map((_, layer) =>
      profilePoints(layer).map((p) => ({ k_rank: p.kRank, v_rank: p.vRank, error: p.error })),
    ),
    allocation: { kind: 'budget', target: 0.05, feasible: true, weighted_error: 0.01 },
    seconds: { capture: 1, profile: 2, eval: 1 },
  };
}

export function reportData(out: string): ReportData {
  const compress = compressReport();
  return {
    format: 'rankwise-report',
    version: 1,
    created: '2025-01-01T00:00:00Z',
    model: { dir: CARD.dir, info: CARD },
    compress,
    memory: {
      kvBytesPerToken: compress.kv_bytes_per_token,
      perSequence: [],
      weightsBytes: { original: 14_000_000, compressed: 13_900_000 },
      totals: { contextTokens: 4096, batch: 1, original: 0, compressed: 0 },
      concurrency: { memoryBytes: 0, contextTokens: 4096, sequencesOriginal: 0, sequencesCompressed: 0 },
    },
    export: {
      dir: out,
      files: [
        { name: 'config.json', bytes: 900 },
        { name: 'model.safetensors', bytes: 13_900_000 },
        { name: 'model.onnx', bytes: 14_100_000 },
      ],
      seconds: { write: 1, verify: 2 },
      verification: {
        windows: 2,
        checkpointRelError: 1e-7,
        onnxRelError: 2e-7,
        onnxPrefillTokens: 64,
        onnxDecodeSteps: 8,
        perplexity: { reloaded: 20.5, inMemory: 20.5 },
        presentBytes: { measured: 1000, predicted: 1000 },
        tolerance: 1e-4,
        passed: true,
      },
    },
  };
}

function preview(req: DataPreviewRequest): DataPreview {
  const calib = 'builtin' in req.source ? req.source.builtin === 'demo-calibration' : true;
  const tokens = calib ? 2000 : 1200;
  return {
    path: 'builtin' in req.source ? `/assets/demo/${req.source.builtin}.txt` : req.source.path,
    bytes: tokens * 3,
    tokens,
    windows: Math.floor(tokens / req.window),
    window: req.window,
    sample: 'Once upon a time there was a small model.',
    promptSuggestions: ['Once upon a time there was', 'The little dog ran'],
  };
}

type Listener = (event: JobEvent) => void;
type ScriptedEvent = JobEvent extends infer E
  ? E extends JobEvent
    ? Omit<E, 'jobId' | 'seq'>
    : never
  : never;

export type FakeApi = { [K in keyof RankwiseApi]: Mock<RankwiseApi[K]> } & {
  /** Sends an event to the job's subscribers, as the engine would. */
  emit(jobId: string, event: ScriptedEvent): void;
  subscribers(jobId: string): number;
  /** A job the engine already knows (a test that starts at a later step). */
  seed(jobId: string, state: JobState, settings: JobSettings): void;
};

export function fakeApi(): FakeApi {
  const listeners = new Map<string, Set<Listener>>();
  const states = new Map<string, JobState>();
  const seqs = new Map<string, number>();
  let next = 1;

  const summary = (id: string, kind: 'compress' | 'export', settings: JobSettings): JobSummary => ({
    id,
    kind,
    state: states.get(id) ?? 'queued',
    settings,
    createdAt: '2025-01-01T00:00:00Z',
  });
  const settingsOf = new Map<string, JobSettings>();

  const emit = (jobId: string, event: ScriptedEvent) => {
    const seq = (seqs.get(jobId) ?? 0) + 1;
    seqs.set(jobId, seq);
    if (event.type === 'state') states.set(jobId, event.state);
    for (const l of listeners.get(jobId) ?? []) l({ ...event, jobId, seq } as JobEvent);
  };

  const api = {
    inspect: vi.fn(async (dir: string) => ({ ...CARD, dir })),
    previewData: vi.fn(async (req: DataPreviewRequest) => preview(req)),
    estimate: vi.fn(async () => ({
      memoryBytes: 600 * 2 ** 20,
      availableBytes: 8 * 2 ** 30,
      fits: true,
      seconds: 42,
      breakdown: {
        weights: 100 * 2 ** 20,
        activations: 150 * 2 ** 20,
        statistics: 50 * 2 ** 20,
        runtime: 300 * 2 ** 20,
      },
    })),
    startJob: vi.fn(async (settings: JobSettings) => {
      const id = `job-${next++}`;
      settingsOf.set(id, settings);
      states.set(id, 'queued');
      return summary(id, 'compress', settings);
    }),
    cancelJob: vi.fn(async () => undefined),
    resumeJob: vi.fn(async (id: string) => {
      states.set(id, 'queued');
      return summary(id, 'compress', settingsOf.get(id)!);
    }),
    subscribe: vi.fn((jobId: string, listener: Listener) => {
      const set = listeners.get(jobId) ?? new Set();
      set.add(listener);
      listeners.set(jobId, set);
      listener({ type: 'state', jobId, seq: seqs.get(jobId) ?? 0, state: states.get(jobId) ?? 'queued' });
      return () => set.delete(listener);
    }),
    getResult: vi.fn(async (id: string) => compressReport(settingsOf.get(id)?.method)),
    reallocate: vi.fn(async (req: ReallocateRequest): Promise<Allocation> => {
      const layers = CHOSEN.map((c, layer) => {
        const o = req.overrides?.find((x) => x.layer === layer);
        const k = o?.kRank ?? c.k;
        const v = o?.vRank ?? c.v;
        return { layer, kRank: k, vRank: v, error: profileError(layer, k, v) };
      });
      const compressed = layers.reduce((s, l) => s + (l.kRank + l.vRank) * UNIT, 0);
      return {
        layers,
        kvBytesPerToken: { original: ORIGINAL_PER_TOKEN, compressed },
        kvFraction: compressed / ORIGINAL_PER_TOKEN,
        weightedError: layers.reduce((s, l) => s + l.error, 0) / LAYERS,
        feasible: true,
      };
    }),
    exportJob: vi.fn(async (req: ExportRequest) => {
      const id = `export-${next++}`;
      settingsOf.set(id, settingsOf.get(req.jobId)!);
      states.set(id, 'queued');
      return { ...summary(id, 'export', settingsOf.get(req.jobId)!), source: req.jobId, out: req.out };
    }),
    getExportReport: vi.fn(async () => reportData('/out/tiny-llama-kqsvd')),
    listJobs: vi.fn(async () => [] as JobSummary[]),
    choosePath: vi.fn(async () => null),
    browse: vi.fn(async (dir?: string) => ({
      dir: dir ?? '/models',
      parent: null,
      entries: [{ name: 'tiny-llama', path: '/models/tiny-llama', kind: 'dir' as const }],
    })),
    emit,
    subscribers: (jobId: string) => listeners.get(jobId)?.size ?? 0,
    seed: (jobId: string, state: JobState, settings: JobSettings) => {
      // jobs started later get ids of their own
      if (jobId === `job-${next}`) next++;
      states.set(jobId, state);
      settingsOf.set(jobId, settings);
    },
  };
  return api as unknown as FakeApi;
}
