/**
 * Audit #13, item 9: the invalid calls every face must refuse, as tables built from a valid base so each
 * face (engine, socket, IPC) can use its own paths. Each entry: a name, the argument, and a pattern the
 * bad-input message must match (it names the field).
 */
import type { JobSettings } from '../../main/contract/index.ts';

export type Case = [name: string, arg: unknown, field: RegExp];

const without = (s: JobSettings, ...keys: (keyof JobSettings)[]): JobSettings => {
  const copy = { ...s };
  for (const k of keys) delete copy[k];
  return copy;
};

/** Settings wrong in their shape alone (no model needed): `base` must be valid and set `budget`. */
export function invalidSettings(base: JobSettings): Case[] {
  const noTarget = without(base, 'budget', 'kvFraction', 'ranks');
  return [
    ['evalWindows 0', { ...base, evalWindows: 0 }, /settings\.evalWindows/],
    ['calibWindows -1', { ...base, calibWindows: -1 }, /settings\.calibWindows/],
    ['window 1', { ...base, window: 1 }, /settings\.window/],
    ['method "foo"', { ...base, method: 'foo' }, /settings\.method/],
    ['budget -1', { ...base, budget: -1 }, /settings\.budget/],
    ['budget NaN', { ...base, budget: NaN }, /settings\.budget/],
    ['budget "x"', { ...base, budget: 'x' }, /settings\.budget/],
    ['kvFraction 0', { ...noTarget, kvFraction: 0 }, /settings\.kvFraction/],
    ['kvFraction 1.5', { ...noTarget, kvFraction: 1.5 }, /settings\.kvFraction/],
    ['ranks {k: 0}', { ...noTarget, ranks: { k: 0, v: 4 } }, /settings\.ranks\.k/],
    ['ranks without v', { ...noTarget, ranks: { k: 4 } }, /settings\.ranks\.v/],
    [
      'stief {steps: -1, lr: "x"}',
      { ...base, method: 'stief', stief: { steps: -1, lr: 'x' } },
      /settings\.stief\.steps/,
    ],
    ['stief {lr: "x"}', { ...base, method: 'stief', stief: { lr: 'x' } }, /settings\.stief\.lr/],
    ['stief {keys: "each"}', { ...base, method: 'stief', stief: { keys: 'each' } }, /settings\.stief\.keys/],
    [
      'stief {schedule: "mixed"}',
      { ...base, method: 'stief', stief: { schedule: 'mixed' } },
      /settings\.stief\.schedule/,
    ],
    [
      'stief settings for another method',
      { ...base, method: 'ksvd', stief: { steps: 10 } },
      /settings\.stief/,
    ],
    [
      'layerWeights with fixed ranks',
      { ...noTarget, ranks: { k: 4, v: 4 }, layerWeights: [1, 1, 1, 1, 1] },
      /settings\.layerWeights/,
    ],
    ['layerWeights negative', { ...base, layerWeights: [1, -1, 1, 1, 1] }, /settings\.layerWeights\[1\]/],
    ['layerWeights not a list', { ...base, layerWeights: 1 }, /settings\.layerWeights/],
    ['keySpace "sideways"', { ...base, keySpace: 'sideways' }, /settings\.keySpace/],
    ['device "tpu"', { ...base, device: 'tpu' }, /settings\.device/],
    ['two targets at once', { ...base, kvFraction: 0.5 }, /exactly one of settings\.ranks/],
    ['no target', noTarget, /exactly one of settings\.ranks/],
    ['an unknown field', { ...base, evalWindow: 2 }, /settings\.evalWindow\b/],
    ['seed -3', { ...base, seed: -3 }, /settings\.seed/],
    ['an unknown built-in text', { ...base, calib: { builtin: 'etc-passwd' } }, /settings\.calib/],
  ];
}

/** Settings valid in shape but not on stories260K (5 layers, head dimension 8, context 512). */
export function invalidForStories(base: JobSettings): Case[] {
  const noTarget = without(base, 'budget', 'kvFraction', 'ranks');
  return [
    ['ranks {k: 1000}', { ...noTarget, ranks: { k: 1000, v: 4 } }, /settings\.ranks\.k.*8/],
    ['ranks {v: 9}', { ...noTarget, ranks: { k: 4, v: 9 } }, /settings\.ranks\.v.*8/],
    ['layerWeights of the wrong length', { ...base, layerWeights: [1, 1] }, /settings\.layerWeights.*5/],
    ['window past the context', { ...base, window: 4096 }, /settings\.window.*512/],
  ];
}

/** exportJob requests wrong in their shape alone, as patches of a valid {jobId, out}. */
export const INVALID_EXPORT_PATCHES: Case[] = [
  ['ranks v −2', { ranks: [{ layer: 0, kRank: 4, vRank: -2 }] }, /req\.ranks\[0\]\.vRank/],
  ['ranks k 0.5', { ranks: [{ layer: 0, kRank: 0.5, vRank: 4 }] }, /req\.ranks\[0\]\.kRank/],
  ['a negative layer', { ranks: [{ layer: -1, kRank: 4, vRank: 4 }] }, /req\.ranks\[0\]\.layer/],
  [
    'one layer twice',
    {
      ranks: [
        { layer: 1, kRank: 4, vRank: 4 },
        { layer: 1, kRank: 2, vRank: 2 },
      ],
    },
    /req\.ranks\[1\]\.layer/,
  ],
  ['force "yes"', { force: 'yes' }, /req\.force/],
  ['onnx 1', { onnx: 1 }, /req\.onnx/],
  ['an unknown field', { rank: [] }, /req\.rank\b/],
];

/** exportJob requests valid in shape but not on stories260K. */
export const INVALID_EXPORT_FOR_STORIES: Case[] = [
  ['ranks k 1000', { ranks: [{ layer: 0, kRank: 1000, vRank: 4 }] }, /req\.ranks\[0\]\.kRank.*8/],
  ['an override for layer 77', { ranks: [{ layer: 77, kRank: 4, vRank: 4 }] }, /req\.ranks\[0\]\.layer.*5/],
];
