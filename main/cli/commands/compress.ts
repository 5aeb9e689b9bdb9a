import { toJobSettings } from '../../api/engine-api.ts';
import { badInput, RankwiseError } from '../../core/errors.ts';
import { checkJobSettings, checkJobSettingsForModel } from '../../api/validate.ts';
import {
  compressToPlan,
  type CompressReport,
  type CompressSettings,
  type KeySpaceSetting,
} from '../../jobs/compress.ts';
import { METHOD_IDS } from '../../methods/index.ts';
import type { MethodId } from '../../core/kv.ts';
import { openModel } from '../../model/model.ts';
import { COMMON_OPTIONS, intOption, onePositional, parse } from '../args.ts';
import { formatBytes, stderrProgress, table } from '../output.ts';
import { parseDevice } from './eval.ts';
import {
  checkExportTarget,
  EXPORT_OPTIONS,
  exportSummary,
  exportText,
  runExport,
  savePlan,
} from './export.ts';

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

/** The flag behind each field of JobSettings, for the shared checks' messages. */
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
  evalWindows: '--eval-windows',
  seed: '--seed',
  layerWeights: '--layer-weights',
  stief: '--steps/--lr/--train-windows',
  'stief.steps': '--steps',
  'stief.lr': '--lr',
  'stief.trainWindows': '--train-windows',
  device: '--device',
};

/** A refusal of the shared checks, said in flags (`settings.evalWindows` → `--eval-windows`). */
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

/**
 * The API's checks of a job (validate.ts), on what the flags say: the CLI parses its own flags, but what
 * it runs passes the same rules as a job started from the app, the model's included (ranks within the
 * head dimension, one weight per layer, a window within the context).
 */
async function checkAsJob(s: CompressSettings): Promise<void> {
  const job = toJobSettings(s);

  try {
    const checked = checkJobSettings(job);
    const model = await openModel(s.modelDir);
    const { spec } = model;
    await model.close();
    checkJobSettingsForModel(checked, spec);
  } catch (e) {
    throw inFlags(e);
  }
}

export async function compressCommand(argv: string[]): Promise<CompressReport> {
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
  const modelDir = onePositional(positionals, 'MODEL_DIR', COMPRESS_USAGE);
  for (const required of ['calib', 'eval', 'method'] as const) {
    if (!values[required]) throw badInput(`missing --${required}; usage: ${COMPRESS_USAGE}`);
  }
  const hasK = values['k-rank'] !== undefined;
  if (hasK !== (values['v-rank'] !== undefined)) throw badInput('--k-rank and --v-rank go together');
  const out = values.out as string | undefined;
  const weights = values['layer-weights']
    ?.split(',')
    .map((w) => numberOption(w.trim(), 'layer-weights') as number);
  const settings: CompressSettings = {
    modelDir,
    calib: values.calib as string,
    eval: values.eval as string,
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
    calibSampling: oneOf(values['calib-sampling'], 'calib-sampling', ['first', 'random'] as const),
    seed: intOption(values.seed, 'seed', 0, 0),
    layerWeights: weights,
    allocator: oneOf(values.allocator, 'allocator', ['knapsack', 'sweep'] as const),
    device: parseDevice(values.device),
    stief: {
      ...(values.steps !== undefined ? { steps: intOption(values.steps, 'steps', 0, 0) } : {}),
      ...(values.lr !== undefined ? { lr: positive(values.lr, 'lr') } : {}),
      ...(values['train-windows'] !== undefined
        ? { trainWindows: intOption(values['train-windows'], 'train-windows', 4) }
        : {}),
    },
  };
  // refuse before an hour of compression, not after it
  await checkAsJob(settings);
  if (out !== undefined) {
    await checkExportTarget(out, values.force === true, settings.modelDir, values['no-onnx'] !== true);
  }
  const progress = stderrProgress(!values.quiet);
  const { report, plan } = await compressToPlan(settings, { onProgress: progress });
  if (values.plan) await savePlan(values.plan as string, plan);
  const exported = out === undefined ? null : await runExport(plan, out, values, progress);
  const result = exported ? { ...report, export: exportSummary(exported) } : report;
  process.stdout.write(
    values.json
      ? `${JSON.stringify(result)}\n`
      : `${compressTable(report)}\n${exported ? `\n${exportText(exported)}\n` : ''}`,
  );
  return report;
}

/** The allocation table and the before/after summary. */
export function compressTable(r: CompressReport): string {
  const header = ['layer', 'key space', 'k rank', 'v rank', 'layer error'];
  const rows = r.layers.map((l) => [
    String(l.layer),
    l.key_space,
    String(l.k_rank),
    String(l.v_rank),
    l.error.toFixed(4),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  const kv = r.kv_bytes_per_token;
  const summary = table([
    ['method', `${r.method} (key space ${r.key_space})`],
    ['perplexity', `${r.perplexity.original.toFixed(4)} → ${r.perplexity.compressed.toFixed(4)}`],
    [
      'KV cache per token',
      `${formatBytes(kv.original)} → ${formatBytes(kv.compressed)} (${(100 * r.kv_fraction).toFixed(1)} % kept)`,
    ],
    [
      'windows',
      `${r.calib_windows} fit + ${r.heldout_windows} held out, ${r.eval_windows} evaluated, ${r.window} tokens each`,
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
  ]);
  return [line(header), ...rows.map(line), '', summary].join('\n');
}
