import { badInput } from '../../core/errors.ts';
import type { CompressReport, JobEstimate, JobSettings, ReportData } from '../../contract/index.ts';
import { KEY_SPACE_SETTINGS, STIEF_KEY_SHARINGS, STIEF_SCHEDULES } from '../../contract/api.ts';
import { METHOD_CATALOGUE } from '../../core/methods.ts';
import { DEFAULT_TRAIN_WINDOWS, STIEF_DEFAULTS } from '../../methods/stief-settings.ts';
import { formatSeconds } from '../../core/format.ts';
import type { Progress } from '../../core/progress.ts';
import { METHOD_IDS, OBJECTIVES } from '../../core/kv.ts';
import { MAX_PPL_INCREASE } from '../../contract/manifest.ts';
import { FINETUNE_DEFAULTS } from '../../methods/finetune-settings.ts';
import {
  choice,
  COMMON,
  deviceOption,
  fraction,
  increase,
  int,
  num,
  numbers,
  parseCommand,
  snakeKeys,
  text,
  usage,
  windowOption,
  type CommandSpec,
} from '../args.ts';
import { followJob, jobPlan, withEngine, type Engine } from '../engine-client.ts';
import { formatBytes, progressDisplay, table } from '../output.ts';
import { DATA_FORMATS } from './eval.ts';
import {
  checkExportTarget,
  EXPORT_OPTIONS,
  exportSummary,
  exportText,
  parseOnnxDtype,
  savePlan,
} from './export.ts';

const RANKS = 'Ranks (exactly one of the three)';
const WINDOWS = 'Windows';
const STIEF = 'Training (stief only)';
const FINETUNE = 'Fine-tuning (any method)';

export const COMPRESS_COMMAND = {
  name: 'compress',
  summary: "choose each layer's key and value ranks; report perplexity and cache before and after",
  args: [
    { name: 'MODEL_DIR', help: 'a Hugging Face model folder (config.json, model.safetensors, tokenizer)' },
  ],
  oneOf: [[['k-rank', 'v-rank'], ['budget'], ['kv-fraction'], ['max-ppl-increase']]],
  options: {
    calib: text('FILE', 'text the layers are measured and fitted on (formats below)', {
      required: true,
      group: 'Data and method',
    }),
    eval: text('FILE', 'text the perplexity before and after is measured on', {
      required: true,
      group: 'Data and method',
    }),
    method: choice('NAME', METHOD_IDS, 'how each layer is projected (see Methods below)', {
      required: true,
      group: 'Data and method',
    }),
    'k-rank': int('R', 'the same key rank per KV head in every layer (4 of head dim 8 keeps half)', {
      defaultText: 'none',
      group: RANKS,
    }),
    'v-rank': int('R', 'the same value rank per KV head in every layer; goes with --k-rank', {
      defaultText: 'none',
      group: RANKS,
    }),
    budget: num('E', 'the smallest cache whose mean layer-output error ‖Ŷ − Y‖/‖Y‖ is at most E', {
      positive: true,
      defaultText: 'none',
      group: RANKS,
    }),
    'kv-fraction': fraction('F', 'the least layer-output error keeping at most F of the original cache', {
      defaultText: 'none',
      group: RANKS,
    }),
    'max-ppl-increase': increase(
      'P',
      'the smallest cache whose perplexity is predicted to rise by at most P (end-to-end objective)',
      MAX_PPL_INCREASE,
      { defaultText: 'none', group: RANKS },
    ),
    objective: choice(
      'NAME',
      OBJECTIVES,
      "what the allocation minimises: each layer's effect on the model's NLL, or its output error",
      {
        defaultText: "the engine's: e2e on models of up to 12 layers, else layer (--budget: layer)",
        group: RANKS,
      },
    ),
    'key-space': choice('SPACE', KEY_SPACE_SETTINGS, 'where key projections act on RoPE models', {
      defaultText: "the engine's: auto (per layer, whichever space profiles lower)",
      group: RANKS,
    }),
    allocator: choice('NAME', ['knapsack', 'sweep'] as const, 'how ranks are allocated to layers', {
      defaultText: "the engine's: knapsack (eigen with --budget: its own threshold sweep)",
      group: RANKS,
    }),
    'layer-weights': numbers(
      'W1,W2,…',
      "each layer's weight in the allocation's error (one per layer, > 0)",
      {
        defaultText: 'every layer 1',
        group: RANKS,
      },
    ),
    window: windowOption(WINDOWS),
    'calib-windows': int('N', 'calibration windows to use', {
      min: 2,
      defaultText: "the engine's: the first windows, capped",
      group: WINDOWS,
    }),
    'heldout-windows': int('N', 'of those, the last N are held out to measure layer errors', {
      defaultText: "the engine's: a quarter of them",
      group: WINDOWS,
    }),
    'profile-tokens': int('N', 'the error-rank profile compares N positions of each held-out window', {
      min: 1,
      defaultText: 'every position on a narrow model, 32 from hidden size 512 up',
      group: WINDOWS,
    }),
    'eval-windows': int('N', 'evaluate on the first N windows of --eval', {
      defaultText: 'every window of --eval',
      group: WINDOWS,
    }),
    'calib-sampling': choice(
      'HOW',
      ['first', 'random'] as const,
      'calibrate on the first windows, or seeded random ones',
      {
        defaultText: "the engine's: first",
        group: WINDOWS,
      },
    ),
    seed: int('S', 'seed of random sampling and training', { min: 0, default: 0, group: WINDOWS }),
    steps: int('N', 'optimiser steps per phase (keys, then values)', {
      min: 0,
      defaultText: String(STIEF_DEFAULTS.steps),
      group: STIEF,
    }),
    lr: num('X', 'learning rate on the manifold (cosine-decayed)', {
      positive: true,
      defaultText: String(STIEF_DEFAULTS.lr),
      group: STIEF,
    }),
    'train-windows': int('N', 'calibration windows trained on', {
      defaultText: String(DEFAULT_TRAIN_WINDOWS),
      group: STIEF,
    }),
    'stief-keys': choice(
      'SHARING',
      STIEF_KEY_SHARINGS,
      'key bases: one per layer (the paper), one per KV head, or both and the lower at every pair',
      { defaultText: STIEF_DEFAULTS.keys, group: STIEF },
    ),
    'stief-schedule': choice(
      'ORDER',
      STIEF_SCHEDULES,
      'keys then values each against the other uncompressed, or compressed, or both at every step',
      { defaultText: STIEF_DEFAULTS.schedule, group: STIEF },
    ),
    'finetune-steps': int('N', "fine-tune each layer's compressed key and value projections for N steps", {
      min: 1,
      defaultText: 'none (no fine-tuning)',
      group: FINETUNE,
    }),
    'finetune-lr': num('X', 'learning rate of the fine-tuning (Adam)', {
      positive: true,
      defaultText: String(FINETUNE_DEFAULTS.lr),
      group: FINETUNE,
    }),
    ...EXPORT_OPTIONS,
    plan: text('FILE', 'save the plan, so `rankwise export FILE --out DIR` can export it later', {
      group: 'Export',
    }),
    device: deviceOption('Export'),
    ...COMMON,
  },
  notes: [
    `Texts: ${DATA_FORMATS}.`,
    '',
    'Methods:',
    ...METHOD_CATALOGUE.map((m) => `  ${m.id.padEnd(9)}${m.name}: ${m.tradeOff}`),
  ],
  examples: [
    'rankwise compress ./stories260K --calib calib.txt --eval eval.txt --method kqsvd --kv-fraction 50%',
    'rankwise compress ./model --calib calib.txt --eval eval.txt --method ksvd --k-rank 4 --v-rank 6 --json',
    'rankwise compress ./model --calib c.txt --eval e.txt --method eigen --budget 0.05 --out ./kv --plan job.plan',
  ],
} satisfies CommandSpec;

export const COMPRESS_USAGE = usage(COMPRESS_COMMAND);

/** What `compress` asks of the engine: the job's settings, and those the contract does not carry. */
function compressRequest(argv: string[]) {
  const { values, positionals } = parseCommand(argv, COMPRESS_COMMAND);
  const hasK = values['k-rank'] !== undefined;
  if (hasK !== (values['v-rank'] !== undefined)) throw badInput('--k-rank and --v-rank go together');
  // absent training options stay absent: the engine applies STIEF_DEFAULTS, and a job without them
  // shares its cache with the app's
  const stief = {
    ...(values.steps !== undefined ? { steps: values.steps } : {}),
    ...(values.lr !== undefined ? { lr: values.lr } : {}),
    ...(values['train-windows'] !== undefined ? { trainWindows: values['train-windows'] } : {}),
    ...(values['stief-keys'] !== undefined ? { keys: values['stief-keys'] } : {}),
    ...(values['stief-schedule'] !== undefined ? { schedule: values['stief-schedule'] } : {}),
  };
  const job: JobSettings = {
    model: positionals[0],
    calib: { path: values.calib },
    eval: { path: values.eval },
    method: values.method,
    ranks: hasK ? { k: values['k-rank'] as number, v: values['v-rank'] as number } : undefined,
    budget: values.budget,
    kvFraction: values['kv-fraction'],
    maxPplIncrease: values['max-ppl-increase'],
    objective: values.objective,
    finetune: finetune(values['finetune-steps'], values['finetune-lr']),
    keySpace: values['key-space'],
    window: values.window,
    calibWindows: values['calib-windows'],
    evalWindows: values['eval-windows'],
    seed: values.seed,
    layerWeights: values['layer-weights'],
    stief: Object.keys(stief).length > 0 ? stief : undefined,
    device: values.device,
    heldoutWindows: values['heldout-windows'],
    profileTokens: values['profile-tokens'],
    calibSampling: values['calib-sampling'],
    allocator: values.allocator,
  };
  return { values, job };
}

/** The fine-tuning a job asks for: none without --finetune-steps, whose learning rate needs steps to apply to. */
function finetune(steps: number | undefined, lr: number | undefined): JobSettings['finetune'] {
  if (steps === undefined) {
    if (lr !== undefined)
      throw badInput('--finetune-lr needs --finetune-steps: without steps nothing is fine-tuned');
    return undefined;
  }
  return lr === undefined ? { steps } : { steps, lr };
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
  const { values, job } = compressRequest(argv);
  const out = values.out;
  const quiet = values.quiet;
  const progress = progressDisplay(!quiet);
  const follow = {
    onProgress: (p: Progress) => progress.progress(p),
    onLog: (message: string) => {
      if (!quiet) progress.log(`rankwise compress: ${message}`);
    },
  };
  const result = await withEngine(async (api: Engine): Promise<CompressOutput> => {
    // refuse before an hour of compression, not after it
    const estimate = await api.estimate(job);
    if (out !== undefined) {
      await checkExportTarget(
        out,
        values.force === true,
        job.model,
        values['no-onnx'] !== true,
        parseOnnxDtype(values['onnx-dtype']),
      );
    }
    if (!quiet) progress.log(estimateLine(estimate));
    const started = await api.startJob(job);
    const cache = { reused: 0, fitted: 0 };
    await followJob(api, started.id, {
      ...follow,
      onProfile: (e) => (e.cached ? cache.reused++ : cache.fitted++),
    });
    const report = await api.getResult(started.id);
    if (values.plan !== undefined) await savePlan(values.plan, await jobPlan(api, started.id));
    let exported: ReportData | null = null;
    if (out !== undefined) {
      const exporting = await api.exportJob({
        jobId: started.id,
        out,
        force: values.force === true,
        onnx: values['no-onnx'] !== true,
        onnxDtype: parseOnnxDtype(values['onnx-dtype']),
      });
      await followJob(api, exporting.id, follow);
      exported = await api.getExportReport(exporting.id);
    }
    return { report, job: { id: started.id, cache }, export: exported };
  }).finally(() => progress.end());
  // a diverged fine-tuning kept an earlier iterate: said where it is seen even with --json
  for (const w of result.report.finetune?.warnings ?? []) process.stderr.write(`warning: fine-tuning ${w}\n`);
  // the thin space starts from whole RoPE planes; whoever asked for it without training should know
  if (result.report.keySpace === 'thin-rope' && !result.report.finetune && !quiet) {
    process.stderr.write(
      'note: --key-space thin-rope keeps whole RoPE planes of each head until fine-tuned; ' +
        'add --finetune-steps (300 recovers most of the loss on stories260K)\n',
    );
  }
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
            `${r.allocation.kind} ${r.allocation.target}${r.objective ? ` (objective ${r.objective})` : ''}` +
              `${r.allocation.feasible ? '' : ` — not met: ${r.allocation.reason}`}`,
          ] as [string, string],
        ]
      : []),
    ...(r.finetune
      ? [
          [
            'fine-tuning',
            `${r.finetune.layers.length} layers, ${r.finetune.steps} steps at lr ${r.finetune.lr}: held-out layer loss ` +
              r.finetune.layers
                .map((l) => `${l.heldoutLoss.start.toFixed(4)}→${l.heldoutLoss.best.toFixed(4)}`)
                .join(' ') +
              ` (${r.finetune.seconds.toFixed(1)} s)` +
              r.finetune.warnings.map((w) => `; warning: ${w}`).join(''),
          ] as [string, string],
        ]
      : []),
    ...(r.predicted
      ? [
          [
            'predicted perplexity',
            `${r.predicted.perplexity.toFixed(4)} (from the calibration windows, carried to this text; measured ${r.perplexity.compressed.toFixed(4)})`,
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
