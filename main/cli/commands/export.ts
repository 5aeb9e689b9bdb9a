import fs from 'node:fs';
import path from 'node:path';

import { badInput } from '../../core/errors.ts';
import { exportPlan, predictedExportBytes, REPORT_HTML } from '../../export/export.ts';
import { prepareDestination, removePartial } from '../../export/publish.ts';
import { openModel } from '../../model/model.ts';
import { readPlanFile, writePlanFile } from '../../export/plan-file.ts';
import type { ReportData } from '../../contract/report.ts';
import { ONNX_DTYPES, type OnnxDtype } from '../../contract/api.ts';
import type { CompressionPlan } from '../../jobs/compress.ts';
import type { Progress } from '../../core/progress.ts';
import { choice, COMMON, deviceOption, flag, parseCommand, text, usage, type CommandSpec } from '../args.ts';
import { formatBytes, stderrProgress, table } from '../output.ts';
import { parseDevice } from './eval.ts';

/** The checkpoint's 16-bit type (float16 for F16 and BF16), or float32. */
export const DEFAULT_ONNX_DTYPE: OnnxDtype = 'auto';

/** Options `export` shares with `compress --out`. */
export const EXPORT_OPTIONS = {
  out: text('DIR', 'write the export here: a checkpoint, onnx/model.onnx and the report, verified first', {
    group: 'Export',
  }),
  force: flag('replace DIR if it exists (only after the new export passed verification)', {
    group: 'Export',
  }),
  'no-onnx': flag('skip the ONNX decoder (and its verification)', { group: 'Export' }),
  'onnx-dtype': choice('TYPE', ONNX_DTYPES, "element type of the ONNX decoder's cache and weights", {
    default: DEFAULT_ONNX_DTYPE,
    defaultText: `${DEFAULT_ONNX_DTYPE} (the checkpoint's 16-bit type, or float32)`,
    group: 'Export',
  }),
};

export const EXPORT_COMMAND = {
  name: 'export',
  summary: 'write a saved plan (compress --plan) as a model folder with an ONNX decoder, verified',
  args: [{ name: 'PLAN', help: 'a plan file that `rankwise compress --plan FILE` saved' }],
  options: {
    ...EXPORT_OPTIONS,
    out: { ...EXPORT_OPTIONS.out, required: true as const },
    device: deviceOption('Export'),
    ...COMMON,
  },
  examples: [
    'rankwise export job.plan --out ./stories-kv50',
    'rankwise export job.plan --out ./stories-kv50 --force --onnx-dtype float32 --json',
  ],
} satisfies CommandSpec;

export const EXPORT_USAGE = usage(EXPORT_COMMAND);

/** --onnx-dtype, checked against the contract's list (default auto: the checkpoint's 16 bits, or float32). */
export function parseOnnxDtype(value: unknown): OnnxDtype {
  if (value === undefined) return DEFAULT_ONNX_DTYPE;
  if (!(ONNX_DTYPES as readonly unknown[]).includes(value)) {
    throw badInput(`--onnx-dtype must be one of ${ONNX_DTYPES.join(', ')}, got "${String(value)}"`);
  }
  return value as OnnxDtype;
}

/**
 * Fails fast on a destination that would be refused after the work is done: one that exists (without
 * --force), cannot be written, or lacks room for what exporting `modelDir` writes.
 */
export async function checkExportTarget(
  out: string,
  force: boolean,
  modelDir: string,
  onnx: boolean,
  onnxDtype: OnnxDtype = 'auto',
): Promise<void> {
  if (out.trim() === '') throw badInput('--out must name a folder');
  const there = await fs.promises.stat(path.resolve(out)).then(
    () => true,
    () => false,
  );
  if (there && !force)
    throw badInput('already exists; pass --force to replace it with the new export', path.resolve(out));
  const model = await openModel(modelDir);
  try {
    await removePartial(
      await prepareDestination(path.resolve(out), predictedExportBytes(model, onnx, onnxDtype)),
    );
  } finally {
    await model.close();
  }
}

/** Writes the plan through a temporary name, so a failed write never leaves a truncated plan. */
export async function savePlan(file: string, plan: CompressionPlan): Promise<void> {
  // a unique name: a file of the user's called <file>.partial is never overwritten
  const tmp = `${file}.rankwise-tmp-${process.pid}-${Date.now()}`;
  try {
    await writePlanFile(tmp, plan);
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}

export async function runExport(
  plan: CompressionPlan,
  out: string,
  values: Record<string, unknown>,
  onProgress: (p: Progress) => void,
): Promise<ReportData> {
  return exportPlan(plan, {
    out,
    force: values.force === true,
    onnx: values['no-onnx'] !== true,
    onnxDtype: parseOnnxDtype(values['onnx-dtype']),
    device: parseDevice(values.device as string | undefined),
    onProgress,
  });
}

/** What `--json` prints about an export. */
export function exportSummary(r: ReportData) {
  return {
    dir: r.export.dir,
    report: path.join(r.export.dir, REPORT_HTML),
    files: r.export.files,
    verification: r.export.verification,
    seconds: r.export.seconds,
  };
}

export function exportText(r: ReportData): string {
  const v = r.export.verification;
  const ev = r.export.evaluation;
  const o = v.onnx;
  const rows: [string, string][] = [
    ['exported to', r.export.dir],
    ['report', path.join(r.export.dir, REPORT_HTML)],
    [
      'verified',
      `checkpoint logits Δ ${v.checkpointRelError.toExponential(2)} (tolerance ${v.tolerance}), ` +
        `ONNX with KV cache Δ ${v.onnxRelError.toExponential(2)} ` +
        `(${v.onnxPrefillTokens} prefilled + ${v.onnxDecodeSteps} decoded; tolerance ${o?.tolerance ?? v.tolerance})`,
    ],
  ];
  if (o) {
    rows.push([
      'onnx',
      `cache ${o.cacheDtype}, weights ${o.weightsDtype}; cache ${o.cacheBytesPerToken.measured} B/token ` +
        `measured (the original model: ${o.cacheBytesPerToken.original} B/token)`,
    ]);
  }
  if (ev) {
    rows.push([
      'exported perplexity',
      `${ev.perplexity.toFixed(4)} on ${ev.windows} evaluation windows (the job in memory: ${ev.inMemory.toFixed(4)})`,
    ]);
  }
  rows.push(
    [
      'perplexity',
      `${v.perplexity.reloaded.toFixed(4)} reloaded, ${v.perplexity.inMemory.toFixed(4)} in memory (${v.windows} windows)`,
    ],
    [
      'weights',
      `${formatBytes(r.memory.weightsBytes.original)} → ${formatBytes(r.memory.weightsBytes.compressed)}`,
    ],
  );
  return table(rows);
}

export async function exportCommand(argv: string[]): Promise<ReportData> {
  const { values, positionals } = parseCommand(argv, EXPORT_COMMAND);
  const [planFile] = positionals;
  const plan = await readPlanFile(planFile);
  await checkExportTarget(
    values.out,
    values.force === true,
    plan.modelDir,
    values['no-onnx'] !== true,
    parseOnnxDtype(values['onnx-dtype']),
  );
  const data = await runExport(plan, values.out, values, stderrProgress(!values.quiet));
  process.stdout.write(values.json ? `${JSON.stringify(exportSummary(data))}\n` : `${exportText(data)}\n`);
  return data;
}
