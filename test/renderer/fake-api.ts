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
  LocalModels,
  ModelCard,
  RankwiseApi,
  ReallocateRequest,
  ReportData,
  TryRequest,
  TryResult,
  TryRunSummary,
  TrySideResult,
} from '../../main/contract/index.ts';

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
  qkNorm: false,
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
    keySpace: 'auto',
    window: 128,
    calibWindows: 8,
    heldoutWindows: 2,
    evalWindows: 4,
    device: 'cpu',
    perplexity: { original: 20, compressed: method === 'kqsvd' ? 20.5 : 21.5 },
    kvBytesPerToken: { original: ORIGINAL_PER_TOKEN, compressed },
    kvFraction: compressed / ORIGINAL_PER_TOKEN,
    layers: CHOSEN.map((c, layer) => ({
      layer,
      kRank: c.k,
      vRank: c.v,
      keySpace: 'pre-rope',
      error: profileError(layer, c.k, c.v),
    })),
    profile: CHOSEN.map((_, layer) =>
      profilePoints(layer).map((p) => ({ kRank: p.kRank, vRank: p.vRank, error: p.error })),
    ),
    allocation: { kind: 'budget', target: 0.05, feasible: true, weightedError: 0.01 },
    seconds: { capture: 1, profile: 2, eval: 1 },
  };
}

export function reportData(out: string): ReportData {
  const compress = compressReport();
  return {
    format: 'rankwise-report',
    version: 3,
    created: '2025-01-01T00:00:00Z',
    model: { dir: CARD.dir, info: CARD },
    compress,
    memory: {
      kvBytesPerToken: compress.kvBytesPerToken,
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

/**
 * A scripted Try-it run: the compressed model ("model") and the original ("compare") agree on three
 * tokens, then part ways at index 3 and meet again on the last.
 */
export const TRY_TOKENS = {
  model: [
    { id: 10, text: ' there' },
    { id: 11, text: ' was' },
    { id: 12, text: ' a' },
    { id: 20, text: ' big' },
    { id: 21, text: ' dog' },
    { id: 15, text: '.' },
  ],
  compare: [
    { id: 10, text: ' there' },
    { id: 11, text: ' was' },
    { id: 12, text: ' a' },
    { id: 13, text: ' little' },
    { id: 14, text: ' cat' },
    { id: 15, text: '.' },
  ],
};
export const TRY_DIVERGENCE = 3;

/** The token events of indices [from, to), the two sides taking turns as the engine's do. */
export function tryTokenEvents(from = 0, to = TRY_TOKENS.model.length): ScriptedEvent[] {
  const events: ScriptedEvent[] = [];
  for (let index = from; index < to; index++) {
    for (const side of ['model', 'compare'] as const) {
      const t = TRY_TOKENS[side][index];
      events.push({
        type: 'token',
        prompt: 0,
        side,
        index,
        id: t.id,
        text: t.text,
        tokensPerSecond: side === 'model' ? 50 + index : 40 + index,
        kvCacheBytes: (side === 'model' ? 1000 : 2048) * (4 + index),
      });
    }
  }
  return events;
}

function trySide(side: 'model' | 'compare', stopped: boolean): TrySideResult {
  const tokens = stopped ? TRY_TOKENS[side].slice(0, 2) : TRY_TOKENS[side];
  return {
    label: side === 'model' ? 'kqsvd compression of tiny-llama' : 'tiny-llama',
    exported: false,
    promptTokens: 5,
    ids: tokens.map((t) => t.id),
    text: tokens.map((t) => t.text).join(''),
    stopReason: stopped ? 'stopped' : 'limit',
    prefillSeconds: 0.01,
    decodeSeconds: 0.1,
    prefillTokensPerSecond: 500,
    decodeTokensPerSecond: side === 'model' ? 55 : 45,
    kvCacheBytes: (side === 'model' ? 1000 : 2048) * 10,
    kvBytesPerToken: side === 'model' ? 1000 : 2048,
    device: 'cpu',
  };
}

/** The result of the scripted run (or of one stopped after two tokens: then not compared). */
export function tryResult(req: TryRequest, stopped = false): TryResult {
  return {
    prompts: [
      {
        prompt: req.prompt,
        model: trySide('model', stopped),
        compare: trySide('compare', stopped),
        ...(stopped
          ? {}
          : {
              comparison: {
                firstDivergence: TRY_DIVERGENCE,
                identicalShare: 4 / 6,
                meanKl: 0.042,
                klPositions: 6,
              },
            }),
      },
    ],
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
  const tries = new Map<string, TryRequest>();
  const stoppedTries = new Set<string>();

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
    cancelJob: vi.fn(async (id: string) => {
      if (tries.has(id)) stoppedTries.add(id);
    }),
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
    listModels: vi.fn(async (): Promise<LocalModels> => ({
      bundled: null,
      hubCache: null,
      huggingFace: [],
      recent: [],
    })),
    startTry: vi.fn(async (req: TryRequest): Promise<TryRunSummary> => {
      const id = `try-${next++}`;
      tries.set(id, req);
      states.set(id, 'queued');
      return { id, kind: 'try', state: 'queued', createdAt: '2025-01-01T00:00:00Z' };
    }),
    getTryResult: vi.fn(async (id: string) => tryResult(tries.get(id)!, stoppedTries.has(id))),
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
