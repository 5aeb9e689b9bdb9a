/** The settings a job can check only once the model is open: its head dimension and its key spaces. */
import type { KeySpaceSetting } from '../../contract/report.ts';
import { badInput, badSetting } from '../../core/errors.ts';
import type { KeySpace, MethodId } from '../../core/kv.ts';
import { askableKeySpaces, keySpaceObstacle, METHOD_CATALOGUE, methodKeySpaces } from '../../core/methods.ts';
import { MAX_PPL_INCREASE } from '../../contract/manifest.ts';
import type { ModelSpec } from '../../model/types.ts';
import type { CompressSettings } from '../settings.ts';

export function checkSettings(s: CompressSettings, spec: ModelSpec): void {
  const targets = [s.ranks, s.budget, s.kvFraction, s.maxPplIncrease];
  if (targets.filter((t) => t !== undefined).length !== 1) {
    // the contract validator's words for the same rule, which each face puts in its own
    throw badInput(
      'give exactly one of settings.ranks, settings.budget, settings.kvFraction or settings.maxPplIncrease',
    );
  }
  if (s.ranks) {
    for (const [name, r] of [
      ['ranks.k', s.ranks.k],
      ['ranks.v', s.ranks.v],
    ] as const) {
      if (!Number.isInteger(r) || r < 1 || r > spec.headDim) {
        throw badSetting(
          name,
          `${name} must be an integer from 1 to the head dimension ${spec.headDim} (ranks are per KV head), got ${r}`,
        );
      }
    }
  }
  if (s.budget !== undefined && !(s.budget > 0 && Number.isFinite(s.budget))) {
    throw badSetting(
      'budget',
      `budget must be a positive number (a mean relative layer-output error such as 0.05), got ${s.budget}`,
    );
  }
  checkObjective(s);
  if (s.finetune !== undefined) checkFinetune(s.finetune);
  if (s.kvFraction !== undefined && !(s.kvFraction > 0 && s.kvFraction <= 1)) {
    throw badSetting(
      'kvFraction',
      `kvFraction must be in (0, 1], the share of the original KV cache to keep, got ${s.kvFraction}`,
    );
  }
}

/** The perplexity target's range, and the objective against a target that fixes it. */
function checkObjective(s: CompressSettings): void {
  const p = s.maxPplIncrease;
  if (p !== undefined && !(p > 0 && p <= MAX_PPL_INCREASE)) {
    throw badSetting(
      'maxPplIncrease',
      `maxPplIncrease must be in (0, ${MAX_PPL_INCREASE}] (the perplexity increase accepted, a fraction: 0.05 for 5 %), got ${p}`,
    );
  }
  if (s.objective === 'e2e' && s.budget !== undefined) {
    throw badSetting(
      'objective',
      'objective e2e allocates by predicted perplexity, and settings.budget bounds layer errors; ' +
        'state the target as settings.maxPplIncrease, or use objective layer',
    );
  }
  if (s.objective === 'layer' && p !== undefined) {
    throw badSetting(
      'objective',
      'settings.maxPplIncrease is a perplexity target, which only objective e2e predicts; ' +
        'use settings.kvFraction or settings.budget with objective layer',
    );
  }
}

function checkFinetune(f: { steps: number; lr?: number }): void {
  if (!Number.isInteger(f.steps) || f.steps < 1) {
    throw badSetting('finetune.steps', `finetune.steps must be a whole number ≥ 1, got ${f.steps}`);
  }
  if (f.lr !== undefined && !(f.lr > 0 && Number.isFinite(f.lr))) {
    throw badSetting('finetune.lr', `finetune.lr must be a positive number (a learning rate), got ${f.lr}`);
  }
}

/**
 * The key spaces a job fits: all the method has on this model (`available`) for `auto`, else the one asked
 * for. A refusal says why when the model, not the method, rules the space out, since the same setting
 * works on another model.
 */
export function keySpacesFor(
  setting: KeySpaceSetting,
  available: KeySpace[],
  method: MethodId,
  spec: ModelSpec,
): KeySpace[] {
  const rope = spec.block.rope !== null;
  const { qkNorm } = spec.block;
  if (available.length === 0) {
    const own = methodKeySpaces(method, rope);
    const others = METHOD_CATALOGUE.map((m) => m.id).filter(
      (id) => methodKeySpaces(id, rope, qkNorm).length > 0,
    );
    const why = keySpaceObstacle(own[0], rope, qkNorm) ?? 'the model allows none of them';
    throw badInput(
      `${method} cannot compress the keys of this ${spec.modelType} model: it fits ${own.join(' or ')} keys, ` +
        `but ${why}` +
        (others.length > 0 ? `; use ${others.join(' or ')}` : ''),
    );
  }
  if (setting === 'auto') return available;
  const askable = [
    ...available,
    ...askableKeySpaces(method, rope, qkNorm).filter((k) => !available.includes(k)),
  ];
  if (!askable.includes(setting)) {
    const why = keySpaceObstacle(setting, rope, qkNorm);
    throw badSetting(
      'keySpace',
      `keySpace ${setting} is not available for ${method} on this ${spec.modelType} model` +
        `${why ? `: ${why}` : ''}; use one of ${askable.join(', ')} or auto`,
    );
  }
  return [setting];
}
