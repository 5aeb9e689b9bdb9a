/** Where a job keeps its files, and the job cache's key (ARCHITECTURE.md §3: model, data, settings). */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { badInput } from '../api/errors.ts';
import type { CompressionPlan } from './compress.ts';
import type { CompressSettings } from './compress.ts';

export const JOB_FILE = 'job.json';
export const RESULT_FILE = 'result.json';
export const PLAN_META = 'plan.json';

export type PlanMeta = Omit<CompressionPlan, 'layers'>;

export const layerFile = (cacheDir: string, layer: number) =>
  path.join(cacheDir, `layer-${layer}.safetensors`);

export async function readPlanMeta(jobDir: string): Promise<PlanMeta> {
  const file = path.join(jobDir, PLAN_META);
  try {
    return JSON.parse(await fs.promises.readFile(file, 'utf8')) as PlanMeta;
  } catch {
    throw badInput('the job has no finished result to export', jobDir);
  }
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
  // Budgets, memory targets and layer weights only steer the allocation, which runs after the layer loop;
  // only EigenAttention's own sweep picks ranks inside it, so only then does the budget change a layer.
  const {
    device: _device,
    threads: _threads,
    evalWindows: _evalWindows,
    budget,
    kvFraction: _kvFraction,
    layerWeights: _layerWeights,
    allocator,
    ...fitting
  } = s;
  const sweep = s.method === 'eigen' && budget !== undefined && (allocator ?? 'sweep') === 'sweep';
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ ...fitting, allocating: !s.ranks, sweepBudget: sweep ? budget : null }));
  hash.update(await fileStamp(s.modelDir));
  hash.update(await fileStamp(s.calib));
  hash.update(await fileStamp(s.eval));
  return hash.digest('hex').slice(0, 32);
}
