/**
 * A RankwiseApi with canned answers, for testing the hosts without the engine. Job ids steer it:
 * `missing` is unknown (bad-input), `boom` fails inside (internal), `hang` never answers, `endless`
 * streams progress until unsubscribed, `bad-event` emits an event JSON cannot carry, and
 * `throwing-unsubscribe` throws when its subscription ends. Any other job runs: state running (at once,
 * inside subscribe), PROGRESS_STEPS progress events on a timer, state done.
 */
import path from 'node:path';
import type {
  Allocation,
  CompressReport,
  DataPreview,
  DirectoryListing,
  JobEstimate,
  JobEvent,
  JobSettings,
  JobSummary,
  ModelCard,
  RankwiseApi,
  ReportData,
} from '../../main/contract/index.ts';
import { badInput, unsupportedModel } from '../../main/core/errors.ts';

export const PROGRESS_STEPS = 3;

export interface FakeApi extends RankwiseApi {
  /** Every call that reached the fake, in order (subscribe included). */
  calls: { method: string; params: unknown[] }[];
  /** Subscriptions opened and not yet ended. */
  active(): number;
}

export const SETTINGS: JobSettings = {
  model: '/models/tiny',
  calib: { builtin: 'demo-calibration' },
  eval: { builtin: 'demo-evaluation' },
  method: 'kqsvd',
  budget: 0.05,
};

export function modelCard(dir: string): ModelCard {
  return {
    dir,
    modelType: 'llama',
    family: 'llama',
    layers: 2,
    heads: 4,
    kvHeads: 2,
    headDim: 8,
    hiddenSize: 32,
    vocabSize: 300,
    maxPositions: 128,
    rope: 10000,
    qkNorm: false,
    dtype: 'F32',
    parameters: 12_345,
    kvBytesPerToken: 256,
    kvBytesPerSequence: [{ tokens: 4096, bytes: 4096 * 256 }],
  };
}

const REPORT: CompressReport = {
  model: '/models/tiny',
  method: 'kqsvd',
  keySpace: 'pre-rope',
  window: 64,
  calibWindows: 4,
  heldoutWindows: 1,
  evalWindows: 2,
  device: 'cpu',
  perplexity: { original: 12.5, compressed: 12.9 },
  kvBytesPerToken: { original: 256, compressed: 128 },
  kvFraction: 0.5,
  layers: [],
  seconds: { fit: 0.1 },
};

function summary(id: string, settings: JobSettings, extra: Partial<JobSummary> = {}): JobSummary {
  return { id, kind: 'compress', state: 'queued', settings, createdAt: '2025-01-01T00:00:00.000Z', ...extra };
}

export function fakeApi(intervalMs = 5): FakeApi {
  const calls: FakeApi['calls'] = [];
  let active = 0;
  const record = (method: string, ...params: unknown[]) => calls.push({ method, params });
  const missing = (id: string) => {
    if (id === 'missing') throw badInput(`no job "${id}"`);
  };

  return {
    calls,
    active: () => active,

    async inspect(modelDir) {
      record('inspect', modelDir);
      if (path.basename(modelDir) === 'unsupported') {
        throw unsupportedModel('model_type "falcon" is not supported', path.join(modelDir, 'config.json'));
      }
      return modelCard(modelDir);
    },
    async previewData(req): Promise<DataPreview> {
      record('previewData', req);
      const file = 'path' in req.source ? req.source.path : `/builtin/${req.source.builtin}.txt`;
      return {
        path: file,
        bytes: 1234,
        tokens: 300,
        windows: 4,
        window: req.window,
        sample: 'Once upon a time',
        promptSuggestions: ['Once upon a time'],
      };
    },
    async estimate(settings): Promise<JobEstimate> {
      record('estimate', settings);
      return {
        memoryBytes: 1e6,
        availableBytes: 8e9,
        fits: true,
        seconds: 3,
        breakdown: { weights: 4e5, activations: 3e5, statistics: 2e5, runtime: 1e5 },
      };
    },
    async startJob(settings) {
      record('startJob', settings);
      return summary('job-1', settings);
    },
    async cancelJob(id) {
      record('cancelJob', id);
      missing(id);
    },
    async resumeJob(id) {
      record('resumeJob', id);
      missing(id);
      return summary(id, SETTINGS, { state: 'running' });
    },
    subscribe(id, listener) {
      record('subscribe', id);
      missing(id);
      let seq = 0;
      const emit = (event: Record<string, unknown>) =>
        listener({ jobId: id, seq: seq++, ...event } as unknown as JobEvent);
      emit({ type: 'state', state: 'running' });
      if (id === 'bad-event') emit({ type: 'log', message: 'size', bytes: 10n });
      let step = 0;
      const timer = setInterval(() => {
        if (id === 'endless' || step < PROGRESS_STEPS) {
          step += 1;
          emit({
            type: 'progress',
            stage: 'fit',
            layer: 0,
            done: step,
            total: id === 'endless' ? 1e9 : PROGRESS_STEPS,
            etaSeconds: null,
            memoryBytes: 1e6,
          });
        } else {
          emit({ type: 'state', state: 'done' });
          clearInterval(timer);
        }
      }, intervalMs);
      active += 1;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        clearInterval(timer);
        active -= 1;
        if (id === 'throwing-unsubscribe') throw new Error('unsubscribe broke');
      };
    },
    async getResult(id) {
      record('getResult', id);
      missing(id);
      return REPORT;
    },
    async reallocate(req): Promise<Allocation> {
      record('reallocate', req);
      if (req.jobId === 'boom') throw new Error('kaboom');
      return {
        layers: [{ layer: 0, kRank: 4, vRank: 8, error: 0.01 }],
        kvBytesPerToken: { original: 256, compressed: 192 },
        kvFraction: 0.75,
        weightedError: 0.01,
        feasible: true,
      };
    },
    async exportJob(req) {
      record('exportJob', req);
      missing(req.jobId);
      return summary('export-1', SETTINGS, { kind: 'export', source: req.jobId, out: req.out });
    },
    async getExportReport(id) {
      record('getExportReport', id);
      missing(id);
      if (id === 'hang') return new Promise<ReportData>(() => {});
      if (id === 'bigint') return { format: 'rankwise-report', size: 1n } as unknown as ReportData;
      return { format: 'rankwise-report', version: 1, compress: REPORT } as unknown as ReportData;
    },
    async listJobs() {
      record('listJobs');
      return [summary('job-1', SETTINGS, { state: 'done' })];
    },
    async listModels() {
      record('listModels');
      return { bundled: null, hubCache: null, huggingFace: [], recent: [] };
    },
    async startTry(req) {
      record('startTry', req);
      return { id: 'try-1', kind: 'try', state: 'queued', createdAt: '2026-01-01T00:00:00.000Z' };
    },
    async getTryResult(id) {
      record('getTryResult', id);
      missing(id);
      return { prompts: [] };
    },
    async choosePath(purpose) {
      record('choosePath', purpose);
      throw new Error('browser mode must not open a native dialog');
    },
    async browse(dir): Promise<DirectoryListing> {
      record('browse', dir);
      throw new Error('browser mode browses inside its own roots, not through the engine');
    },
  };
}
