/**
 * File-system errors on inputs, in words. Every read of a model file or a text goes through these, so an
 * unreadable input is always a bad-input error (exit 2) that names the path and says why ("permission
 * denied", "a symbolic link loop"), never a raw EACCES (exit 1) nor a misleading "does not exist".
 */
import { badInput, type RankwiseError } from '../core/errors.ts';

const REASONS: Record<string, string> = {
  ENOENT: 'it does not exist',
  ENOTDIR: 'a part of its path is a file, not a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ELOOP: 'a symbolic link loop',
  EISDIR: 'it is a folder, not a file',
  ENAMETOOLONG: 'its path is too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  EIO: 'an input/output error from the disk',
  ENXIO: 'no such device',
  ENODEV: 'no such device',
  EBUSY: 'the file is busy',
  ETIMEDOUT: 'the file system timed out',
  ESTALE: 'a stale network file handle',
  EOVERFLOW: 'the file is too large for this system',
};

const ADVICE: Record<string, string> = {
  EACCES: 'check its permissions',
  EPERM: 'check its permissions',
  ELOOP: 'fix the link',
};

/** The errno code of a Node file-system error, or undefined for anything else. */
export function fsErrorCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | null | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/** "permission denied", "a symbolic link loop", …: why a file-system call failed, in words. */
export function fsErrorReason(e: unknown): string {
  const code = fsErrorCode(e);
  if (code) return REASONS[code] ?? code;
  return e instanceof Error ? e.message : String(e);
}

/** `file: cannot be read (permission denied); check its permissions`, as a bad-input error. */
export function unreadable(e: unknown, file: string): RankwiseError {
  const code = fsErrorCode(e);
  const advice = code ? ADVICE[code] : undefined;
  return badInput(`cannot be read (${fsErrorReason(e)})${advice ? `; ${advice}` : ''}`, file);
}

const WRITE_REASONS: Record<string, string> = {
  EROFS: 'is on a read-only file system',
  EACCES: 'is not writable (permission denied)',
  EPERM: 'is not writable (operation not permitted)',
  ENOSPC: 'has no space left on its disk',
  EDQUOT: 'is over its disk quota',
  ENOTDIR: 'has a file where a folder is needed',
  ELOOP: 'is a symbolic link loop',
  ENAMETOOLONG: 'has a name that is too long',
};

/** `dir: is on a read-only file system`, …: a place Rankwise could not write, as a bad-input error. */
export function unwritable(e: unknown, p: string): RankwiseError {
  const code = fsErrorCode(e);
  return badInput((code && WRITE_REASONS[code]) ?? `could not be written (${fsErrorReason(e)})`, p);
}

/** True for "nothing there" errors (ENOENT, ENOTDIR), which callers phrase as a missing file. */
export function isMissing(e: unknown): boolean {
  const code = fsErrorCode(e);
  return code === 'ENOENT' || code === 'ENOTDIR';
}
