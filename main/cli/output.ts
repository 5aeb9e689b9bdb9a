import type { Progress } from '../core/progress.ts';
import { NoProgress, PlainProgress, TerminalProgress, type ProgressSink } from './progress-display.ts';

export { formatBytes } from '../core/format.ts';

let plainOnly = false;
const live = new Set<TerminalProgress>();

/** --json asks for plain progress lines even on a terminal: whatever reads the JSON may read stderr too. */
export function setPlainProgress(plain: boolean): void {
  plainOnly = plain;
}

/** Clears any progress line on the terminal, so an error message starts at the line's beginning. */
export function clearProgress(): void {
  for (const d of live) d.end();
}

/**
 * Whether stderr is a terminal that redraws a line: not a pipe or file, not CI's log (which often claims a
 * TTY but keeps every carriage return), not TERM=dumb.
 */
function redrawable(): boolean {
  return process.stderr.isTTY === true && !plainOnly && !process.env.CI && process.env.TERM !== 'dumb';
}

/** Progress on stderr: the one-line display on a terminal, plain lines elsewhere, nothing when disabled. */
export function progressDisplay(enabled = true): ProgressSink {
  const write = (s: string) => void process.stderr.write(s);
  if (!enabled) return new NoProgress(write);
  if (!redrawable()) return new PlainProgress(write);
  // Ctrl-C must not leave a half-drawn bar with ^C in it: clear the line. When this is the only SIGINT
  // listener (a command that runs in-process, with no job to cancel), listening took Node's default away,
  // so give it back and raise the signal again: the process still dies of it (exit 130 in the shell).
  // It runs first (prepended), so it sees whether another listener (a job's cancel) is there to handle it.
  const onSigint = () => {
    const alone = process.listenerCount('SIGINT') === 1;
    display.clear();
    if (alone) process.kill(process.pid, 'SIGINT');
  };
  const display: TerminalProgress = new TerminalProgress({
    write,
    columns: () => process.stderr.columns || 80,
    now: () => performance.now(),
    shown: (visible) => {
      if (visible) {
        live.add(display);
        process.prependListener('SIGINT', onSigint);
      } else {
        live.delete(display);
        process.off('SIGINT', onSigint);
      }
    },
  });
  return display;
}

/** Progress as a callback, for code that only reports events (a finished stage clears its own line). */
export function stderrProgress(enabled = true): (p: Progress) => void {
  const display = progressDisplay(enabled);
  return (p) => display.progress(p);
}

/** Left-aligned two-column table for the human-readable cards. */
export function table(rows: [string, string][]): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}
