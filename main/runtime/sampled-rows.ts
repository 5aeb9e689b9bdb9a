/**
 * Which positions of a window the layer losses compare: every one, or a stratified random sample on a wide
 * model (the profile's sweep, the layer gradient and the fine-tuning share the draw).
 */
import { mulberry32 } from '../model/prng.ts';
import type { ModelSpec } from '../model/types.ts';
import type { HeldoutBatch } from './capture.ts';

/**
 * Positions a profile compares in a window of T tokens: every one when `perWindow` ≥ T, else one drawn at
 * random in each of `perWindow` equal strata, so early and late positions (short and long attention
 * context) are both represented. Seeded, so a profile is reproducible.
 */
export function sampledRows(T: number, perWindow: number, seed: number): Int32Array {
  if (perWindow >= T) return Int32Array.from({ length: T }, (_, t) => t);
  const rand = mulberry32(seed);
  const rows = new Int32Array(perWindow);
  for (let i = 0; i < perWindow; i++) {
    const lo = Math.floor((i * T) / perWindow);
    const hi = Math.floor(((i + 1) * T) / perWindow);
    rows[i] = lo + Math.floor(rand() * (hi - lo));
  }
  return rows;
}

/**
 * How many positions of each held-out window the profile measures by default: all of them for a narrow
 * model, where a full layer forward per rank pair is cheap; 32 for a model whose hidden size is 512 or
 * more (SmolLM2-135M and up), where the MLP at every position of every pair would dominate the job
 * (docs/benchmarks.md: 64 positions cost the 135M shape 1.5 s more per compress, every position 50 s).
 */
export const WIDE_MODEL_PROFILE_ROWS = 32;

export function defaultProfileRows(spec: ModelSpec): number {
  return spec.hiddenSize >= 512 ? WIDE_MODEL_PROFILE_ROWS : Number.POSITIVE_INFINITY;
}

/**
 * Batch `index` of a layer's held-out (or training) batches: its sampled positions and the original output
 * there, [B, S, D]. The draw depends on the job's seed, the layer and the batch, so the profile and the
 * gradient of one batch compare the same positions.
 */
export function sampledBatchRows(
  batch: HeldoutBatch,
  index: number,
  D: number,
  perWindow: number,
  seed = 0,
): { rows: Int32Array; yRows: Float32Array } {
  const rows = sampledRows(batch.T, perWindow, seed * 7919 + (batch.layer ?? 0) * 131 + index);
  const S = rows.length;
  const yRows = new Float32Array(batch.B * S * D);
  for (let s = 0; s < batch.B; s++)
    rows.forEach((t, j) => {
      const from = (s * batch.T + t) * D;
      yRows.set(batch.y.subarray(from, from + D), (s * S + j) * D);
    });
  return { rows, yRows };
}
