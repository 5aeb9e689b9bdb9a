/** The settings a job can check only once the model is open: its head dimension and its key spaces. */
import type { KeySpaceSetting } from '../../contract/report.ts';
import { badInput, badSetting } from '../../core/errors.ts';
import type { KeySpace, MethodId } from '../../core/kv.ts';
import { keySpaceObstacle, METHOD_CATALOGUE, methodKeySpaces } from '../../core/methods.ts';
import type { ModelSpec } from '../../model/types.ts';
import type { CompressSettings } from '../settings.ts';

export function checkSettings(s: CompressSettings, spec: ModelSpec): void {
  const modes = [s.ranks !== undefined, s.budget !== undefined, s.kvFraction !== undefined].filter(Boolean);
  if (modes.length !== 1) {
    // the contract validator's words for the same rule, which each face puts in its own
    throw badInput('give exactly one of settings.ranks, settings.budget or settings.kvFraction');
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
  if (s.kvFraction !== undefined && !(s.kvFraction > 0 && s.kvFraction <= 1)) {
    throw badSetting(
      'kvFraction',
      `kvFraction must be in (0, 1], the share of the original KV cache to keep, got ${s.kvFraction}`,
    );
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
  if (!available.includes(setting)) {
    const why = keySpaceObstacle(setting, rope, qkNorm);
    throw badSetting(
      'keySpace',
      `keySpace ${setting} is not available for ${method} on this ${spec.modelType} model` +
        `${why ? `: ${why}` : ''}; use one of ${available.join(', ')} or auto`,
    );
  }
  return [setting];
}
