import { nameSetting, type ErrorInfo } from '../core/errors.ts';

/** The flag behind each setting (a field of JobSettings or ExportRequest), for the engine's messages. */
const FLAGS: Record<string, string> = {
  model: 'MODEL_DIR',
  calib: '--calib',
  'calib.path': '--calib',
  eval: '--eval',
  'eval.path': '--eval',
  method: '--method',
  ranks: '--k-rank/--v-rank',
  'ranks.k': '--k-rank',
  'ranks.v': '--v-rank',
  budget: '--budget',
  kvFraction: '--kv-fraction',
  maxPplIncrease: '--max-ppl-increase',
  objective: '--objective',
  finetune: '--finetune-steps/--finetune-lr',
  'finetune.steps': '--finetune-steps',
  'finetune.lr': '--finetune-lr',
  keySpace: '--key-space',
  window: '--window',
  calibWindows: '--calib-windows',
  heldoutWindows: '--heldout-windows',
  profileTokens: '--profile-tokens',
  evalWindows: '--eval-windows',
  calibSampling: '--calib-sampling',
  allocator: '--allocator',
  seed: '--seed',
  layerWeights: '--layer-weights',
  stief: '--steps/--lr/--train-windows/--stief-keys/--stief-schedule',
  'stief.steps': '--steps',
  'stief.lr': '--lr',
  'stief.trainWindows': '--train-windows',
  'stief.keys': '--stief-keys',
  'stief.schedule': '--stief-schedule',
  device: '--device',
  out: '--out',
  force: '--force',
  onnxDtype: '--onnx-dtype',
};

const flagOf = (setting: string) => (Object.hasOwn(FLAGS, setting) ? FLAGS[setting] : undefined);

/**
 * An engine error as the CLI says it: the engine names settings in the contract's words, which the app
 * shows as they are, so the flags are put in here, for every command. Both forms are mapped: the setting
 * an error carries (`window 1024 is longer…` → `--window 1024 is longer…`), and the contract validator's
 * field paths (`settings.evalWindows` → `--eval-windows`), which only a refusal without a file names.
 */
export function inFlags(info: ErrorInfo): ErrorInfo {
  let message = nameSetting(info, flagOf);
  if (info.kind === 'bad-input' && info.file === undefined) {
    message = message
      .replace(
        /\bsettings\.layerWeights\[(\d+)\]/g,
        (_m, i: string) => `weight ${Number(i) + 1} of --layer-weights`,
      )
      .replace(/\bsettings\.([A-Za-z]+(?:\.[A-Za-z]+)?)/g, (m, field: string) => flagOf(field) ?? m);
  }
  return message === info.message ? info : { ...info, message };
}
