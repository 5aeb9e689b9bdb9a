/** The settings a job can check only once the model is open: its head dimension and its key spaces. */
import type { KeySpaceSetting } from '../../contract/report.ts';
import { badInput } from '../../core/errors.ts';
import type { KeySpace, MethodId } from '../../core/kv.ts';
import type { ModelSpec } from '../../model/types.ts';
import type { CompressSettings } from '../settings.ts';

export function checkSettings(s: CompressSettings, spec: ModelSpec): void {
  const modes = [s.ranks !== undefined, s.budget !== undefined, s.kvFraction !== undefined].filter(Boolean);
  if (modes.length !== 1) {
    throw badInput('give exactly one of --k-rank/--v-rank, --budget or --kv-fraction');
  }
  if (s.ranks) {
    for (const [name, r] of [
      ['--k-rank', s.ranks.k],
      ['--v-rank', s.ranks.v],
    ] as const) {
      if (!Number.isInteger(r) || r < 1 || r > spec.headDim) {
        throw badInput(
          `${name} must be an integer from 1 to the head dimension ${spec.headDim} (ranks are per KV head), got ${r}`,
        );
      }
    }
  }
  if (s.budget !== undefined && !(s.budget > 0 && Number.isFinite(s.budget))) {
    throw badInput(
      `--budget must be a positive number (a mean relative layer-output error such as 0.05), got ${s.budget}`,
    );
  }
  if (s.kvFraction !== undefined && !(s.kvFraction > 0 && s.kvFraction <= 1)) {
    throw badInput(
      `--kv-fraction must be in (0, 1], the share of the original KV cache to keep, got ${s.kvFraction}`,
    );
  }
}

/** The key spaces a job fits: all the method has on this model for `auto`, else the one asked for. */
export function keySpacesFor(setting: KeySpaceSetting, available: KeySpace[], method: MethodId): KeySpace[] {
  if (setting === 'auto') return available;
  if (!available.includes(setting)) {
    throw badInput(
      `--key-space ${setting} is not available for ${method} on this model; use one of ${available.join(', ')} or auto`,
    );
  }
  return [setting];
}
