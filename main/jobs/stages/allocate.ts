/** The allocate stage: each layer's ranks, by the allocator over every profile unless the loop chose them. */
import { allocateTarget, type Allocation, type LayerProfile } from '../../core/allocate/index.ts';
import type { LayerEffect } from '../../core/allocate/effect.ts';
import type { RankPlan, RankPoint } from '../../methods/types.ts';
import { dtypeBytes } from '../../model/dtype.ts';
import type { ModelSpec } from '../../model/types.ts';
import type { CompressSettings } from '../settings.ts';
import type { LayerResults } from './layers.ts';

/**
 * The allocation of `profiles` under the job's target: over the layer errors, or, given the layers'
 * measured effects, over the predicted end-to-end effect (core's allocateTarget, which re-allocation uses).
 */
export function allocateProfiles(
  s: Pick<CompressSettings, 'kvFraction' | 'budget' | 'maxPplIncrease' | 'layerWeights'>,
  spec: ModelSpec,
  profiles: readonly LayerProfile[],
  effects: readonly LayerEffect[] | null,
): Allocation {
  const shape = { kvHeads: spec.numKvHeads, headDim: spec.headDim, bytesPerElement: dtypeBytes(spec.dtype) };
  return allocateTarget(profiles, shape, {
    kvFraction: s.kvFraction,
    budget: s.budget,
    maxPplIncrease: s.maxPplIncrease,
    weights: s.layerWeights,
    ...(effects ? { effects } : {}),
  });
}

export function allocateRanks(
  s: CompressSettings,
  spec: ModelSpec,
  plan: RankPlan,
  layers: LayerResults,
  endToEnd: Allocation | null,
): { chosen: RankPoint[]; allocation: Allocation | null } {
  if (plan.choose !== 'allocator') return { chosen: layers.chosen, allocation: null };
  const allocation = endToEnd ?? allocateProfiles(s, spec, layers.profiles, null);
  const chosen = allocation.layers.map((l) => ({ kRank: l.kRank, vRank: l.vRank, error: l.error }));
  return { chosen, allocation };
}
