/** Which objective a job's allocation minimises, from its target, its settings and the model's depth. */
import { describe, expect, it } from 'vitest';
import { E2E_DEFAULT_MAX_LAYERS, objectiveOf } from '../../main/jobs/stages/objective.ts';
import type { CompressSettings } from '../../main/jobs/settings.ts';
import type { RankPlan } from '../../main/methods/types.ts';
import type { ModelSpec } from '../../main/model/types.ts';

const spec = (numLayers: number) => ({ numLayers }) as ModelSpec;
const allocator: RankPlan = { profile: [], ranks: [], choose: 'allocator' };
const base: CompressSettings = { modelDir: '', calib: '', eval: '', method: 'kqsvd' };

describe('objectiveOf', () => {
  it('defaults a memory target to e2e up to the layer limit, to layer errors beyond it', () => {
    const s = { ...base, kvFraction: 0.5 };
    expect(objectiveOf(s, spec(E2E_DEFAULT_MAX_LAYERS), allocator)).toBe('e2e');
    expect(objectiveOf(s, spec(E2E_DEFAULT_MAX_LAYERS + 1), allocator)).toBe('layer');
    expect(objectiveOf({ ...s, objective: 'e2e' }, spec(80), allocator)).toBe('e2e');
    expect(objectiveOf({ ...s, objective: 'layer' }, spec(5), allocator)).toBe('layer');
  });

  it('a perplexity target is end to end, a budget is layer errors, and without the allocator there is none', () => {
    expect(objectiveOf({ ...base, maxPplIncrease: 0.05 }, spec(80), allocator)).toBe('e2e');
    expect(objectiveOf({ ...base, budget: 0.05 }, spec(5), allocator)).toBe('layer');
    expect(
      objectiveOf({ ...base, ranks: { k: 2, v: 2 } }, spec(5), { ...allocator, choose: 'fixed' }),
    ).toBeNull();
  });
});
