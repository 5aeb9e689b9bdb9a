import type { Progress } from '../runtime/forward.ts';

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

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

/** Left-aligned two-column table for the human-readable cards. */
export function table(rows: [string, string][]): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}
