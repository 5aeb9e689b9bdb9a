/**
 * Engine errors as a person can act on them: what went wrong (the engine's own message, which names the
 * file or option) and what to change, by error kind and by where in the wizard it happened.
 */
import type { ErrorInfo } from '../../main/contract/index.ts';

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

const BAD_INPUT_ADVICE: Record<ErrorContext, string> = {
  connect: 'Open the address that `rankwise serve` printed, token included, while the server is running.',
  model:
    'Choose the folder that holds config.json, the .safetensors weights and tokenizer.json of one model.',
  data:
    'Check the named file: plain text (.txt), JSON lines with a "text" field (.jsonl, .json, .gz) or Parquet. ' +
    'If the text is too short for the window, use a shorter window or a longer text.',
  method: 'Change the value named above: the budget must be a positive number, the memory kept 1–100 %.',
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
          'Rankwise compresses Llama, Mistral, Qwen2 and GPT-2 checkpoints stored as .safetensors (F32, F16 ' +
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
