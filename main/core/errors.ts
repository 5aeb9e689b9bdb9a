/**
 * Errors that cross every face of the engine (CLI, server, Electron). `kind` decides the CLI exit code
 * and how the UI phrases the message; `file` names the input that was wrong, when there is one.
 */
export type ErrorKind = 'bad-input' | 'unsupported-model' | 'cancelled' | 'internal';

export class RankwiseError extends Error {
  readonly kind: ErrorKind;
  readonly file: string | undefined;

  constructor(kind: ErrorKind, message: string, file?: string) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'RankwiseError';
    this.kind = kind;
    this.file = file;
  }
}

/** Bad user input: a missing or malformed file, an out-of-range option. CLI exit code 2. */
export function badInput(message: string, file?: string): RankwiseError {
  return new RankwiseError('bad-input', message, file);
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
}

export function toErrorInfo(e: unknown): ErrorInfo {
  if (e instanceof RankwiseError) {
    return e.file ? { kind: e.kind, message: e.message, file: e.file } : { kind: e.kind, message: e.message };
  }
  return { kind: 'internal', message: e instanceof Error ? e.message : String(e) };
}
