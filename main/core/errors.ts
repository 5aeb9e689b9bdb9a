/**
 * Errors that cross every face of the engine (CLI, server, Electron). `kind` decides the CLI exit code
 * and how the UI phrases the message; `file` names the input that was wrong, when there is one; `setting`
 * names the setting to change, by its contract field path ('kvFraction', 'ranks.k', 'window', 'force').
 *
 * The engine's words reach every face, so they never name a CLI flag or an app control: a message about a
 * setting says its field path wherever it means the setting, and nowhere uses that word for anything
 * else, so each face can put its own name in its place (`nameSetting`): the CLI its flag, the app its label.
 */
export type ErrorKind = 'bad-input' | 'unsupported-model' | 'cancelled' | 'internal';

export class RankwiseError extends Error {
  readonly kind: ErrorKind;
  readonly file: string | undefined;
  readonly setting: string | undefined;

  constructor(kind: ErrorKind, message: string, file?: string, setting?: string) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'RankwiseError';
    this.kind = kind;
    this.file = file;
    this.setting = setting;
  }
}

/** Bad user input: a missing or malformed file, an out-of-range option. CLI exit code 2. */
export function badInput(message: string, file?: string): RankwiseError {
  return new RankwiseError('bad-input', message, file);
}

/** Bad input that one setting can fix; `message` names it by its field path (see RankwiseError). */
export function badSetting(setting: string, message: string, file?: string): RankwiseError {
  return new RankwiseError('bad-input', message, file, setting);
}

/** A well-formed checkpoint whose architecture Rankwise does not handle. CLI exit code 2. */
export function unsupportedModel(message: string, file?: string): RankwiseError {
  return new RankwiseError('unsupported-model', message, file);
}

export function isUserError(e: unknown): e is RankwiseError {
  return e instanceof RankwiseError && (e.kind === 'bad-input' || e.kind === 'unsupported-model');
}

/** Plain-data form of an error, for JSON output and for crossing to the renderer. */
export interface ErrorInfo {
  kind: ErrorKind;
  message: string;
  file?: string;
  setting?: string;
}

export function toErrorInfo(e: unknown): ErrorInfo {
  if (e instanceof RankwiseError) {
    return {
      kind: e.kind,
      message: e.message,
      ...(e.file ? { file: e.file } : {}),
      ...(e.setting ? { setting: e.setting } : {}),
    };
  }
  return { kind: 'internal', message: e instanceof Error ? e.message : String(e) };
}

/**
 * The error's message with each mention of its setting (a whole field path: not part of a longer word,
 * path or flag) in a face's own words; the file it names is left as it is. Unchanged when there is no
 * setting or `name` has no words for it.
 */
export function nameSetting(info: ErrorInfo, name: (setting: string) => string | undefined): string {
  const words = info.setting === undefined ? undefined : name(info.setting);
  if (info.setting === undefined || words === undefined) return info.message;
  const prefix = info.file !== undefined && info.message.startsWith(`${info.file}: `) ? `${info.file}: ` : '';
  const escaped = info.setting.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const mention = new RegExp(`(?<![\\w.-])${escaped}(?![\\w-]|\\.\\w)`, 'g');
  return prefix + info.message.slice(prefix.length).replace(mention, () => words);
}
