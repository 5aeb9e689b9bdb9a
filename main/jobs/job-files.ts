/**
 * Where a job keeps its files, and the job cache's key (ARCHITECTURE.md §3: model, data, settings). Every
 * job file is written whole or not at all (a unique temporary name, then a rename), and read back with an
 * error that names the file when it is damaged.
 */
import { upgradeCompressReport } from '../contract/report-upgrade.ts';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { badInput, type RankwiseError } from '../core/errors.ts';
import { isMissing, unreadable } from '../model/fs-errors.ts';
import { methodById } from '../methods/index.ts';
import type { CompressionPlan } from './compress.ts';
import type { CompressSettings } from './settings.ts';
import { tempName } from './temp-files.ts';

export { tempName, tempWriter } from './temp-files.ts';

export const JOB_FILE = 'job.json';
/**
 * The job as it was started (the same fields as job.json), written once and never rewritten: a job whose
 * job.json is damaged keeps its settings, so it can still be listed (as failed) and resumed.
 */
export const JOB_START_FILE = 'job-start.json';
export const RESULT_FILE = 'result.json';
export const PLAN_META = 'plan.json';

export type PlanMeta = Omit<CompressionPlan, 'layers'>;

export const layerFile = (cacheDir: string, layer: number) =>
  path.join(cacheDir, `layer-${layer}.safetensors`);

export async function readPlanMeta(jobDir: string): Promise<PlanMeta> {
  const file = path.join(jobDir, PLAN_META);
  const meta = await readJobJson(file, 'run the job again', () =>
    badInput('the job has no finished result to export', jobDir),
  );
  return { ...meta, report: upgradeCompressReport(meta.report) } as PlanMeta;
}

/**
 * Writes `file` whole or not at all: the data goes to a temporary name of its own (so concurrent writers
 * never share one), reaches the disk, and is renamed over `file`.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempName(file);
  try {
    const fh = await fs.promises.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * A job file written by writeFileAtomic, parsed: a JSON object. Missing: `missing()`'s error; damaged
 * (not JSON, not an object): a bad-input error naming the file and saying what to do (`advice`).
 */
export async function readJobJson(
  file: string,
  advice: string,
  missing: () => RankwiseError = () => badInput(`is missing; ${advice}`, file),
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    if (isMissing(e)) throw missing();
    throw unreadable(e, file);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw badInput(`is damaged (${text.length === 0 ? 'empty' : (e as Error).message}); ${advice}`, file);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badInput(`is damaged (not a JSON object); ${advice}`, file);
  }
  return value as Record<string, unknown>;
}

/** Size and modification time: a changed file gets a new key without hashing gigabytes. */
async function fileStamp(p: string): Promise<string> {
  const st = await fs.promises.stat(p);
  if (!st.isDirectory()) return `${path.resolve(p)}:${st.size}:${st.mtimeMs}`;
  const names = (await fs.promises.readdir(p))
    .filter((n) => n.endsWith('.json') || n.endsWith('.safetensors'))
    .sort();
  const parts = await Promise.all(names.map((n) => fileStamp(path.join(p, n))));
  return parts.join('|');
}

/**
 * The cache key of a compress job: the model's files, the texts, and every setting that changes a
 * layer's fit, profile or in-loop choice.
 */
export async function cacheKey(s: CompressSettings): Promise<string> {
  // Budgets, memory targets, the objective and layer weights only steer the allocation, which runs after
  // the layer loop, and fine-tuning works on the allocated layers after it;
  // a method that picks ranks inside it names what of them its layers depend on (its cacheKey hook).
  const {
    device: _device,
    threads: _threads,
    evalWindows: _evalWindows,
    budget: _budget,
    kvFraction: _kvFraction,
    maxPplIncrease: _maxPplIncrease,
    objective: _objective,
    finetune: _finetune,
    layerWeights: _layerWeights,
    allocator: _allocator,
    ...fitting
  } = s;
  const own = methodById(s.method).cacheKey(s);
  const hash = createHash('sha256');
  // sweepBudget: null where the method adds nothing keeps the keys of the caches already on disk
  hash.update(JSON.stringify({ ...fitting, allocating: !s.ranks, sweepBudget: null, ...own }));
  hash.update(await fileStamp(s.modelDir));
  hash.update(await fileStamp(s.calib));
  hash.update(await fileStamp(s.eval));
  return hash.digest('hex').slice(0, 32);
}
