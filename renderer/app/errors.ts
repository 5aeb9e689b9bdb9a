/**
 * Engine errors as a person can act on them: what went wrong (the engine's own message, which names the
 * file or option) and what to change, by error kind and by where in the wizard it happened.
 */
import type { ErrorInfo } from '../../main/contract/index.ts';
import { nameSetting } from '../../main/core/errors.ts';

/** Where the error happened: the same kind of error calls for a different fix in each place. */
export type ErrorContext =
  'connect' | 'model' | 'data' | 'method' | 'run' | 'review' | 'export' | 'jobs' | 'try';

export interface Guidance {
  title: string;
  /** What to change, in the user's terms. */
  advice: string;
}

/** ApiError (both transports), a bridge error carrying `info`, or anything else thrown. */
export function errorInfoOf(e: unknown): ErrorInfo {
  const info = (e as { info?: unknown } | null)?.info as ErrorInfo | undefined;
  if (info && typeof info.kind === 'string' && typeof info.message === 'string') return info;
  if (e instanceof Error) return { kind: 'internal', message: e.message };
  return { kind: 'internal', message: String(e) };
}

/**
 * The wizard's words for the settings the engine names by field path (RankwiseError.setting); quoted
 * where the words are a control's label, so a message says which control to change.
 */
const SETTING_LABELS: Record<string, string> = {
  window: 'window length',
  calibWindows: 'calibration windows',
  evalWindows: 'evaluation windows',
  heldoutWindows: 'held-out windows',
  kvFraction: 'memory kept',
  maxPplIncrease: 'perplexity increase',
  budget: 'error budget',
  keySpace: 'key space',
  'ranks.k': 'key rank',
  'ranks.v': 'value rank',
  out: '“Export to”',
  force: '“Replace the folder if it exists”',
};

/** The engine's message in the wizard's words: the setting it names by its label. */
export function errorMessage(info: ErrorInfo): string {
  return nameSetting(info, (setting) =>
    Object.hasOwn(SETTING_LABELS, setting) ? SETTING_LABELS[setting] : undefined,
  );
}

const BAD_INPUT_ADVICE: Record<ErrorContext, string> = {
  connect: 'Open the address that `rankwise serve` printed, token included, while the server is running.',
  model:
    'Choose the folder that holds config.json, the .safetensors weights and tokenizer.json of one model.',
  data:
    'Check the named file: plain text (.txt), JSON lines with a "text" field (.jsonl, .json, .gz) or Parquet. ' +
    'If the text is too short for the window, use a shorter window or a longer text.',
  method:
    'Change the value named above: the budget must be a positive number, the memory kept 1–100 %, the ' +
    'perplexity increase at most 900 %.',
  run: 'Go back to the step the message names (data, method or budget), change it and start again.',
  review: 'Choose ranks from the layer’s own grid, or reset the layer to the job’s allocation.',
  export:
    'Choose an empty folder that does not exist yet, or tick “Replace the folder” to overwrite an earlier export.',
  jobs: 'Refresh the list; a job that is still running cannot be opened for review yet.',
  try: 'Change what the message names: a shorter prompt, fewer new tokens, or sampling values in range.',
};

export function guidanceFor(info: ErrorInfo, context: ErrorContext): Guidance {
  switch (info.kind) {
    case 'unsupported-model':
      return {
        title: 'This model is not supported',
        advice:
          'Rankwise compresses Llama (2 and 3.x), Mistral, Qwen2, Qwen3, Phi-3, Gemma 2 and GPT-2 checkpoints stored as .safetensors (F32, F16 ' +
          'or BF16). Choose a model of one of these families, or convert this one to safetensors first.',
      };
    case 'bad-input':
      return { title: 'Something in the input needs changing', advice: BAD_INPUT_ADVICE[context] };
    case 'cancelled':
      return {
        title: 'The job was cancelled',
        advice:
          'Resume it to go on where it stopped (finished layers are kept), or change settings and start again.',
      };
    case 'internal':
    default:
      if (context === 'connect' || /connection|could not connect|not open/i.test(info.message)) {
        return {
          title: 'The connection to the engine was lost',
          advice:
            'Check that Rankwise is still running, then reload this page (in browser mode, with the address ' +
            'the server printed).',
        };
      }
      return {
        title: 'The engine failed',
        advice:
          'Try again. If it fails the same way, run the same step with the CLI (`rankwise … --json`) and ' +
          'report the message above.',
      };
  }
}

/**
 * The Hugging Face repository id `text` names (`org/name`), or null. Only the hub's own shape counts: one
 * slash between two parts of letters, digits, `-`, `_` and `.`, neither starting with `.` or `-`, no `--`
 * or `..`; an absolute path, `./x`, `~/x` or a Windows path is a path.
 */
export function hubRepoId(text: string): string | null {
  const t = text.trim();
  const part = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}$/;
  const parts = t.split('/');
  if (parts.length !== 2 || !parts.every((p) => part.test(p))) return null;
  if (/--|\.\./.test(t) || /[.-]$/.test(parts[1])) return null;
  return t;
}

/**
 * What to say when a typed model id is no folder: Rankwise reads local folders and never downloads, so the
 * answer is the download command and where the folder then is, not that the path was refused.
 */
export function hubIdGuidance(id: string): Guidance & { commands: string[] } {
  return {
    title: `“${id}” looks like a Hugging Face model id, not a folder`,
    advice:
      'Rankwise works offline and reads a model from a folder on this machine. Download the model first, ' +
      'then choose its folder here (downloaded models are listed above, from the Hugging Face cache). ' +
      'If you meant a folder of that name, check the path.',
    commands: [`hf download ${id}`, `huggingface-cli download ${id}`],
  };
}
