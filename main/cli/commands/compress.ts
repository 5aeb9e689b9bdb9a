import { badInput, RankwiseError } from '../../core/errors.ts';
import type {
  CompressReport,
  JobEstimate,
  JobSettings,
  KeySpaceSetting,
  ReportData,
} from '../../contract/index.ts';
import { formatSeconds } from '../../core/format.ts';
import { METHOD_IDS, type MethodId } from '../../core/kv.ts';
import type { JobTuning } from '../../api/engine-api.ts';
import { COMMON_OPTIONS, intOption, onePositional, parse, snakeKeys } from '../args.ts';
import { followJob, jobPlan, withEngine, type Engine } from '../engine-client.ts';
import { formatBytes, stderrProgress, table } from '../output.ts';
import { parseDevice } from './eval.ts';
import { checkExportTarget, EXPORT_OPTIONS, exportSummary, exportText, savePlan } from './export.ts';

export const COMPRESS_USAGE =
  'rankwise compress MODEL_DIR --calib FILE --eval FILE --method ' +
  `${METHOD_IDS.join('|')} (--k-rank R --v-rank R | --budget E | --kv-fraction F) ` +
  '[--key-space pre-rope|post-rope|auto] [--window 512] [--calib-windows N] [--heldout-windows N] [--eval-windows N] ' +
  '[--calib-sampling first|random] [--seed S] [--layer-weights w1,w2,…] [--allocator knapsack|sweep] ' +
  '[--steps N] [--lr X] [--train-windows N] (stief) [--device cpu|auto|…] ' +
  '[--out DIR [--force] [--no-onnx]] [--plan FILE] [--json]';

function numberOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw badInput(`--${name} must be a number, got "${value}"`);
  return n;
}

function positive(value: string, name: string): number {
  const n = numberOption(value, name) as number;
  if (!(n > 0)) throw badInput(`--${name} must be a positive number, got "${value}"`);
  return n;
}

function oneOf<T extends string>(
  value: string | undefined,
  name: string,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw badInput(`--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}

/** The flag behind each field of JobSettings (and JobTuning), for the engine's messages. */
const FLAGS: Record<string, string> = {
  model: 'MODEL_DIR',
  calib: '--calib',
  'calib.path': '--calib',
  eval: '--eval',
  'eval.path': '--eval',
  method: '--method',
  ranks: '--k-rank/--v-rank',
  'ranks.k': '--k-rank',
  'ranks.v': '--v-rank',
  budget: '--budget',
  kvFraction: '--kv-fraction',
  keySpace: '--key-space',
  window: '--window',
  calibWindows: '--calib-windows',
  heldoutWindows: '--heldout-windows',
  evalWindows: '--eval-windows',
  calibSampling: '--calib-sampling',
  allocator: '--allocator',
  seed: '--seed',
  layerWeights: '--layer-weights',
  stief: '--steps/--lr/--train-windows',
  'stief.steps': '--steps',
  'stief.lr': '--lr',
  'stief.trainWindows': '--train-windows',
  device: '--device',
};

/** A refusal of the engine's checks, said in flags (`settings.evalWindows` → `--eval-windows`). */
function inFlags(e: unknown): unknown {
  if (!(e instanceof RankwiseError) || e.kind !== 'bad-input' || e.file !== undefined) return e;
  return badInput(
    e.message
      .replace(
        /\bsettings\.layerWeights\[(\d+)\]/g,
        (_m, i: string) => `weight ${Number(i) + 1} of --layer-weights`,
      )
      .replace(/\bsettings\.([A-Za-z]+(?:\.[A-Za-z]+)?)/g, (m, field: string) => FLAGS[field] ?? m),
  );
}

/** The engine's call, with its refusals said in flags. */
async function asFlags<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw inFlags(e);
  }
}

/** What `compress` asks of the engine: the job's settings, and those the contract does not carry. */
function compressRequest(argv: string[]) {
  const { values, positionals } = parse(argv, {
    ...COMMON_OPTIONS,
    calib: { type: 'string' },
    eval: { type: 'string' },
    method: { type: 'string' },
    'k-rank': { type: 'string' },
    'v-rank': { type: 'string' },
    budget: { type: 'string' },
    'kv-fraction': { type: 'string' },
    'key-space': { type: 'string' },
    window: { type: 'string' },
    'calib-windows': { type: 'string' },
    'eval-windows': { type: 'string' },
    'heldout-windows': { type: 'string' },
    'calib-sampling': { type: 'string' },
    seed: { type: 'string' },
    'layer-weights': { type: 'string' },
    allocator: { type: 'string' },
    device: { type: 'string' },
    steps: { type: 'string' },
    lr: { type: 'string' },
    'train-windows': { type: 'string' },
    ...EXPORT_OPTIONS,
    plan: { type: 'string' },
  });
  const model = onePositional(positionals, 'MODEL_DIR', COMPRESS_USAGE);
  for (const required of ['calib', 'eval', 'method'] as const) {
    if (!values[required]) throw badInput(`missing --${required}; usage: ${COMPRESS_USAGE}`);
  }
  const hasK = values['k-rank'] !== undefined;
  if (hasK !== (values['v-rank'] !== undefined)) throw badInput('--k-rank and --v-rank go together');
  const stief = {
    ...(values.steps !== undefined ? { steps: intOption(values.steps, 'steps', 0, 0) } : {}),
    ...(values.lr !== undefined ? { lr: positive(values.lr, 'lr') } : {}),
    ...(values['train-windows'] !== undefined
      ? { trainWindows: intOption(values['train-windows'], 'train-windows', 4) }
      : {}),
  };
  const job: JobSettings = {
    model,
    calib: { path: values.calib as string },
    eval: { path: values.eval as string },
    method: oneOf(values.method, 'method', METHOD_IDS) as MethodId,
    ranks: hasK
      ? { k: intOption(values['k-rank'], 'k-rank', 1), v: intOption(values['v-rank'], 'v-rank', 1) }
      : undefined,
    budget: numberOption(values.budget, 'budget'),
    kvFraction: numberOption(values['kv-fraction'], 'kv-fraction'),
    keySpace: oneOf<KeySpaceSetting>(values['key-space'], 'key-space', [
      'pre-rope',
      'post-rope',
      'folded',
      'auto',
    ]),
    window: intOption(values.window, 'window', 512, 2),
    calibWindows:
      values['calib-windows'] === undefined
        ? undefined
        : intOption(values['calib-windows'], 'calib-windows', 32, 2),
    evalWindows:
      values['eval-windows'] === undefined ? undefined : intOption(values['eval-windows'], 'eval-windows', 1),
    seed: intOption(values.seed, 'seed', 0, 0),
    layerWeights: values['layer-weights']
      ?.split(',')
      .map((w) => numberOption(w.trim(), 'layer-weights') as number),
    stief: Object.keys(stief).length > 0 ? stief : undefined,
    device: parseDevice(values.device),
  };
  const tuning: JobTuning = {
    heldoutWindows:
      values['heldout-windows'] === undefined
        ? undefined
        : intOption(values['heldout-windows'], 'heldout-windows', 1),
    calibSampling: oneOf(values['calib-sampling'], 'calib-sampling', ['first', 'random'] as const),
    allocator: oneOf(values.allocator, 'allocator', ['knapsack', 'sweep'] as const),
  };
  return { values, job, tuning };
}

/** The pre-flight figures, as one line on stderr before the work starts. */
function estimateLine(e: JobEstimate): string {
  return (
    `[estimate] about ${formatBytes(e.memoryBytes)} of memory (${formatBytes(e.availableBytes)} free), ` +
    `time ${formatSeconds(e.seconds)} (rough)`
  );
}

/** What `compress` made: the report, the job that computed it (and its use of the cache), any export. */
export interface CompressOutput {
  report: CompressReport;
  job: { id: string; cache: { reused: number; fitted: number } };
  export: ReportData | null;
}

/**
 * Runs `compress` as a job of the engine API (the app's): the same checks and pre-flight estimate, the
 * job cache, and a place among the app's recent jobs; `--out` exports it with an export job of the same
 * engine, and `--plan` saves its plan for `rankwise export`.
 */
export async function compressCommand(argv: string[]): Promise<CompressOutput> {
  const { values, job, tuning } = compressRequest(argv);
  const out = values.out as string | undefined;
  const quiet = values.quiet === true;
  const progress = stderrProgress(!quiet);
  const follow = {
    onProgress: progress,
    onLog: (message: string) => {
      if (!quiet) process.stderr.write(`rankwise compress: ${message}\n`);
    },
  };
  const result = await withEngine(async (api: Engine): Promise<CompressOutput> => {
    // refuse before an hour of compression, not after it
    const estimate = await asFlags(() => api.estimate(job));
    if (out !== undefined) {
      await checkExportTarget(out, values.force === true, job.model, values['no-onnx'] !== true);
    }
    if (!quiet) process.stderr.write(`${estimateLine(estimate)}\n`);
    const started = await asFlags(() => api.startTunedJob(job, tuning));
    const cache = { reused: 0, fitted: 0 };
    await followJob(api, started.id, {
      ...follow,
      onProfile: (e) => (e.cached ? cache.reused++ : cache.fitted++),
    });
    const report = await api.getResult(started.id);
    if (values.plan) await savePlan(values.plan as string, await jobPlan(api, started.id));
    let exported: ReportData | null = null;
    if (out !== undefined) {
      const exporting = await api.exportJob({
        jobId: started.id,
        out,
        force: values.force === true,
        onnx: values['no-onnx'] !== true,
      });
      await followJob(api, exporting.id, follow);
      exported = await api.getExportReport(exporting.id);
    }
    return { report, job: { id: started.id, cache }, export: exported };
  });
  process.stdout.write(
    values.json
      ? `${JSON.stringify({
          ...(snakeKeys(result.report) as object),
          job: result.job,
          ...(result.export ? { export: exportSummary(result.export) } : {}),
        })}\n`
      : `${compressTable(result.report, result.job)}\n${result.export ? `\n${exportText(result.export)}\n` : ''}`,
  );
  return result;
}

/** The allocation table and the before/after summary (with the job that computed it, when there was one). */
export function compressTable(r: CompressReport, job?: CompressOutput['job']): string {
  const header = ['layer', 'key space', 'k rank', 'v rank', 'layer error'];
  const rows = r.layers.map((l) => [
    String(l.layer),
    l.keySpace,
    String(l.kRank),
    String(l.vRank),
    l.error.toFixed(4),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  const kv = r.kvBytesPerToken;
  const summary = table([
    ['method', `${r.method} (key space ${r.keySpace})`],
    ['perplexity', `${r.perplexity.original.toFixed(4)} → ${r.perplexity.compressed.toFixed(4)}`],
    [
      'KV cache per token',
      `${formatBytes(kv.original)} → ${formatBytes(kv.compressed)} (${(100 * r.kvFraction).toFixed(1)} % kept)`,
    ],
    [
      'windows',
      `${r.calibWindows} fit + ${r.heldoutWindows} held out, ${r.evalWindows} evaluated, ${r.window} tokens each`,
    ],
    ...(r.allocation
      ? [
          [
            'allocation',
            `${r.allocation.kind} ${r.allocation.target}${r.allocation.feasible ? '' : ` — not met: ${r.allocation.reason}`}`,
          ] as [string, string],
        ]
      : []),
    [
      'time',
      Object.entries(r.seconds)
        .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
        .join(', '),
    ],
    ...(job
      ? [
          [
            'job',
            `${job.id} (${job.cache.reused} of ${job.cache.reused + job.cache.fitted} layers from the job cache)`,
          ] as [string, string],
        ]
      : []),
  ]);
  return [line(header), ...rows.map(line), '', summary].join('\n');
}
