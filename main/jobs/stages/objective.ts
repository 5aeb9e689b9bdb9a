/** Which objective a job's allocation minimises, from its target and its settings. */
import type { Objective } from '../../core/kv.ts';
import type { RankPlan } from '../../methods/types.ts';
import type { ModelSpec } from '../../model/types.ts';
import type { CompressSettings } from '../settings.ts';

/**
 * Up to this many layers a memory target is allocated end to end by default. Its probes cost a number of
 * layer runs that grows as the square of the depth (a probe of layer ℓ runs the L − ℓ layers after it), so
 * on deep models it is asked for (`objective: 'e2e'`), not imposed: on stories260K (5 layers) the effects
 * stage takes about as long as the profile, on a 30-layer model it would take many times longer.
 */
export const E2E_DEFAULT_MAX_LAYERS = 12;

/**
 * The default for a memory target: end to end where it is cheap, since on the test models it keeps
 * perplexity lower at every cache size measured (docs/methods.md); the layer errors elsewhere.
 */
export function defaultObjective(spec: ModelSpec): Objective {
  return spec.numLayers <= E2E_DEFAULT_MAX_LAYERS ? 'e2e' : 'layer';
}

/**
 * Null when no allocator runs (fixed ranks, a method's own choice). A perplexity target is end-to-end by
 * definition and an error budget bounds layer errors by definition; checkSettings refuses the other mixes.
 */
export function objectiveOf(s: CompressSettings, spec: ModelSpec, plan: RankPlan): Objective | null {
  if (plan.choose !== 'allocator') return null;
  if (s.maxPplIncrease !== undefined) return 'e2e';
  if (s.budget !== undefined) return 'layer';
  return s.objective ?? defaultObjective(spec);
}
