import fs from 'node:fs';
import path from 'node:path';

import { badInput } from '../../core/errors.ts';
import { exportPlan, predictedExportBytes, REPORT_HTML } from '../../export/export.ts';
import { prepareDestination, removePartial } from '../../export/publish.ts';
import { openModel } from '../../model/model.ts';
import { readPlanFile, writePlanFile } from '../../export/plan-file.ts';
import type { ReportData } from '../../contract/report.ts';
import type { CompressionPlan } from '../../jobs/compress.ts';
import type { Progress } from '../../core/progress.ts';
import { COMMON_OPTIONS, onePositional, parse } from '../args.ts';
import { formatBytes, stderrProgress, table } from '../output.ts';
import { parseDevice } from './eval.ts';

export const EXPORT_USAGE = 'rankwise export PLAN --out DIR [--force] [--no-onnx] [--device cpu|…] [--json]';

/** Options `export` shares with `compress --out`. */
export const EXPORT_OPTIONS = {
  out: { type: 'string' },
  force: { type: 'boolean' },
  'no-onnx': { type: 'boolean' },
} as const;

/**
 * Fails fast on a destination that would be refused after the work is done: one that exists (without
 * --force), cannot be written, or lacks room for what exporting `modelDir` writes.
 */
export async function checkExportTarget(
  out: string,
  force: boolean,
  modelDir: string,
  onnx: boolean,
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
    await removePartial(await prepareDestination(path.resolve(out), predictedExportBytes(model, onnx)));
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
  return table([
    ['exported to', r.export.dir],
    ['report', path.join(r.export.dir, REPORT_HTML)],
    [
      'verified',
      `checkpoint logits Δ ${v.checkpointRelError.toExponential(2)}, ONNX with KV cache Δ ${v.onnxRelError.toExponential(2)} ` +
        `(${v.onnxPrefillTokens} prefilled + ${v.onnxDecodeSteps} decoded; tolerance ${v.tolerance})`,
    ],
    [
      'perplexity',
      `${v.perplexity.reloaded.toFixed(4)} reloaded, ${v.perplexity.inMemory.toFixed(4)} in memory (${v.windows} windows)`,
    ],
    [
      'weights',
      `${formatBytes(r.memory.weightsBytes.original)} → ${formatBytes(r.memory.weightsBytes.compressed)}`,
    ],
  ]);
}

export async function exportCommand(argv: string[]): Promise<ReportData> {
  const { values, positionals } = parse(argv, {
    ...COMMON_OPTIONS,
    ...EXPORT_OPTIONS,
    device: { type: 'string' },
  });
  const planFile = onePositional(positionals, 'PLAN', EXPORT_USAGE);
  if (!values.out) throw badInput(`missing --out; usage: ${EXPORT_USAGE}`);
  const plan = await readPlanFile(planFile);
  await checkExportTarget(values.out, values.force === true, plan.modelDir, values['no-onnx'] !== true);
  const data = await runExport(plan, values.out, values, stderrProgress(!values.quiet));
  process.stdout.write(values.json ? `${JSON.stringify(exportSummary(data))}\n` : `${exportText(data)}\n`);
  return data;
}
