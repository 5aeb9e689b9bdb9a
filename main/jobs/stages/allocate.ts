/** The allocate stage: each layer's ranks, by the allocator over every profile unless the loop chose them. */
import { allocateByBudget, allocateByMemory, type Allocation } from '../../core/allocate/index.ts';
import type { RankPlan, RankPoint } from '../../methods/types.ts';
import { dtypeBytes } from '../../model/dtype.ts';
import type { ModelSpec } from '../../model/types.ts';
import type { CompressSettings } from '../settings.ts';
import type { LayerResults } from './layers.ts';

export function allocateRanks(
  s: CompressSettings,
  spec: ModelSpec,
  plan: RankPlan,
  layers: LayerResults,
): { chosen: RankPoint[]; allocation: Allocation | null } {
  if (plan.choose !== 'allocator') return { chosen: layers.chosen, allocation: null };
  const shape = { kvHeads: spec.numKvHeads, headDim: spec.headDim, bytesPerElement: dtypeBytes(spec.dtype) };
  const allocOpts = { weights: s.layerWeights };
  const allocation =
    s.kvFraction !== undefined
      ? allocateByMemory(layers.profiles, shape, s.kvFraction, allocOpts)
      : allocateByBudget(layers.profiles, shape, s.budget!, allocOpts);
  const chosen = allocation.layers.map((l) => ({ kRank: l.kRank, vRank: l.vRank, error: l.error }));
  return { chosen, allocation };
}
