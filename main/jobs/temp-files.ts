/**
 * Temporary names of job files: every unfinished file of Rankwise ends in `.partial`, and the name says
 * which process writes it, so a restart can tell its own leftovers from another live writer's.
 */
import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';

/**
 * A temporary name beside `file` that no other writer uses: this process and thread, and a random part.
 * It ends in `.partial`, like every unfinished file of Rankwise.
 */
export function tempName(file: string): string {
  return `${file}.${process.pid}-${threadId}-${randomBytes(6).toString('hex')}.partial`;
}

const TEMP_RE = /\.(\d+)-\d+-[0-9a-f]+\.partial$/;

/** The process that writes a temporary file named by tempName (null for another name). */
export function tempWriter(name: string): number | null {
  const m = TEMP_RE.exec(name);
  return m ? Number(m[1]) : null;
}
