/**
 * The methods as the method step presents them: the engine's own catalogue (main/core/methods.ts: names,
 * a plain paragraph for someone new to KV caches, the trade-off, the technical summary, and the key
 * spaces each method fits), so the wizard and the engine never describe a method differently.
 */
import {
  askableKeySpaces,
  keySpaceObstacle,
  METHOD_CATALOGUE,
  type MethodCard,
} from '../../main/core/methods.ts';
import type { MethodId, ModelInfo } from '../../main/contract/index.ts';
import type { KeySpaceSetting } from './wizard.ts';

export interface MethodInfo extends MethodCard {
  /** The engine's summary, under the name the method step shows it by. */
  technical: string;
}

export const METHODS: readonly MethodInfo[] = METHOD_CATALOGUE.map((m) => ({ ...m, technical: m.summary }));

export function methodInfo(id: MethodId): MethodInfo {
  return METHODS.find((m) => m.id === id) ?? METHODS[0];
}

/** What of the model card decides the key spaces (null before a model is chosen: the RoPE case). */
export type KeySpaceModel = Pick<ModelInfo, 'rope' | 'qkNorm'> | null;

const ropeOf = (model: KeySpaceModel) => model === null || model.rope !== null;

/**
 * The key-space choices a method offers on a model: 'auto' plus the spaces it can fit (none to choose
 * without RoPE); empty when the model rules out every space the method fits (methodObstacle says why).
 */
export function keySpacesFor(method: MethodId, model: KeySpaceModel): KeySpaceSetting[] {
  if (!ropeOf(model)) return ['auto'];
  const spaces = askableKeySpaces(method, true, model?.qkNorm ?? false);
  return spaces.length > 0 ? ['auto', ...spaces] : [];
}

/** Why a method cannot compress this model's keys, in the engine's words; null when it can. */
export function methodObstacle(method: MethodId, model: KeySpaceModel): string | null {
  if (keySpacesFor(method, model).length > 0) return null;
  const [first] = methodInfo(method).ropeKeySpaces;
  return keySpaceObstacle(first, ropeOf(model), model?.qkNorm ?? false);
}

export const KEY_SPACE_TEXT: Record<KeySpaceSetting, { label: string; help: string }> = {
  auto: {
    label: 'Automatic',
    help: 'Try each space the method allows and keep, per layer, the one with the lower error.',
  },
  'pre-rope': {
    label: 'Before RoPE',
    help:
      'Cache a short code of the key before its position rotation; rebuild the key, then rotate it. ' +
      'Exact when everything is kept.',
  },
  'post-rope': {
    label: 'After RoPE',
    help: 'Project the already rotated keys and queries, as the KQ-SVD paper does.',
  },
  folded: {
    label: 'Folded',
    help: 'Without RoPE the projection folds exactly into the key and query weights.',
  },
  'thin-rope': {
    label: 'Thin space',
    help:
      'Rotate the short keys and queries themselves and attend without rebuilding anything: the cheapest ' +
      'to decode, but only approximate until fine-tuned (thin keys with fine-tuning steps).',
  },
};

/** Budget slider positions are decades: 0.001 … 0.5 spread evenly on a log scale. */
export const BUDGET_RANGE = { min: 0.001, max: 0.5 };

export function budgetToSlider(budget: number): number {
  const { min, max } = BUDGET_RANGE;
  const b = Math.min(max, Math.max(min, budget));
  return (Math.log10(b) - Math.log10(min)) / (Math.log10(max) - Math.log10(min));
}

export function sliderToBudget(position: number): number {
  const { min, max } = BUDGET_RANGE;
  const v = 10 ** (Math.log10(min) + position * (Math.log10(max) - Math.log10(min)));
  // two significant digits: what a person would type
  return Number(v.toPrecision(2));
}
