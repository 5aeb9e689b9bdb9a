import { formatSeconds } from '../core/format.ts';
import type { Progress } from '../core/progress.ts';

export { formatBytes } from '../core/format.ts';

/** Writes progress to stderr: one rewritten line on a terminal, a line per event otherwise. */
export function stderrProgress(enabled = true): (p: Progress) => void {
  const tty = process.stderr.isTTY;
  return (p) => {
    if (!enabled) return;
    const where = p.layer >= 0 ? ` layer ${p.layer + 1}` : '';
    const eta = p.etaSeconds === null ? '' : `, ETA ${formatSeconds(p.etaSeconds)}`;
    const line = `[${p.stage}]${where} ${p.done}/${p.total}${eta}`;
    if (tty) process.stderr.write(`\r\x1b[2K${line}${p.done === p.total ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  };
}

/** Left-aligned two-column table for the human-readable cards. */
export function table(rows: [string, string][]): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}
