/**
 * Turns per-layer choices into the Allocation record the CLI prints and the UI shows. All totals are
 * computed here, from the chosen points alone, so every producer (solvers, overrides, fixed ranks) reports
 * them the same way.
 */
import { layerFullBytes, pointBytes } from './bytes.ts';
import { totalWeightOf } from './candidates.ts';
import type {
  Allocation,
  AllocationSolver,
  AllocationTarget,
  CacheShape,
  LayerAllocation,
  ProfilePoint,
} from './types.ts';

export interface LayerChoice {
  layer: number;
  point: ProfilePoint;
  pinned: boolean;
}

export interface Verdict {
  feasible: boolean;
  reason?: string;
}

export function summarize(
  choices: readonly LayerChoice[],
  shape: CacheShape,
  weights: readonly number[],
  target: AllocationTarget,
  solver: AllocationSolver,
  verdict: Verdict,
): Allocation {
  const layers: LayerAllocation[] = choices.map(({ layer, point, pinned }) => ({
    layer,
    kRank: point.kRank,
    vRank: point.vRank,
    error: point.error,
    bytesPerToken: pointBytes(point, shape),
    pinned,
  }));
  let total = 0;
  let weighted = 0;
  let plain = 0;
  // Layer order, from 0, weight × error: the same float operations as candidates.weightedSum, so the
  // reported weightedError is exactly what the budget test saw.
  layers.forEach((l, i) => {
    total += l.bytesPerToken;
    weighted += weights[i] * l.error;
    plain += l.error;
  });
  const original = layers.length * layerFullBytes(shape);
  return {
    layers,
    totalBytesPerToken: total,
    originalBytesPerToken: original,
    kvFraction: total / original,
    weightedError: weighted / totalWeightOf(weights),
    meanError: plain / layers.length,
    feasible: verdict.feasible,
    ...(verdict.reason === undefined ? {} : { reason: verdict.reason }),
    target,
    weights: [...weights],
    shape: { kvHeads: shape.kvHeads, headDim: shape.headDim, bytesPerElement: shape.bytesPerElement },
    solver,
  };
}
