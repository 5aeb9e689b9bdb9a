/**
 * Progress on stderr. On a terminal: one line — stage, layer, a bar, counts and ETA — redrawn in place and
 * cleared when the stage ends, so results and messages start on a clean line. Elsewhere (a pipe, CI,
 * --json): a plain line per event, the format scripts and tests read (`[eval] layer 2 3/7, ETA 4 s`).
 *
 * The terminal display is a pure function of the events, the width and the clock it is given, so tests
 * replay a sequence of events and compare the frames without a terminal.
 */
import { formatPercent, formatSeconds } from '../core/format.ts';
import type { Progress } from '../core/progress.ts';

/** Erase the whole line and return to its start: what each redraw begins with. */
export const CLEAR_LINE = '\r\x1b[2K';

/** A terminal redraws at most this often; a new stage or layer is drawn at once. */
export const MIN_REDRAW_MS = 100;

const BAR_MAX = 30;
const BAR_MIN = 8;

/** The line for pipes and logs. */
export function plainLine(p: Progress): string {
  const where = p.layer >= 0 ? ` layer ${p.layer + 1}` : '';
  const eta = p.etaSeconds === null ? '' : `, ETA ${formatSeconds(p.etaSeconds)}`;
  return `[${p.stage}]${where} ${p.done}/${p.total}${eta}`;
}

/**
 * The terminal's line for one event, at most `width − 1` characters (a character in the last column makes
 * some terminals wrap, and a wrapped line can no longer be redrawn in place). The bar shrinks first, then
 * goes, then the line is cut.
 */
export function progressFrame(p: Progress, width: number): string {
  const share = p.total > 0 ? Math.min(1, Math.max(0, p.done / p.total)) : 0;
  const head = [
    p.stage,
    ...(p.layer >= 0 ? [`layer ${p.layer + 1}`] : []),
    ...(p.step !== undefined ? [`step ${p.step}`] : []),
  ].join(' · ');
  const counts = `${p.done}/${p.total}  ${formatPercent(share)}`;
  const eta = `ETA ${formatSeconds(p.etaSeconds)}`;
  const room = width - 1;
  const without = `${head}  ${counts}  ${eta}`;
  const barWidth = Math.min(BAR_MAX, room - without.length - 4);
  if (barWidth >= BAR_MIN) {
    const filled = Math.round(share * barWidth);
    return `${head}  [${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}]  ${counts}  ${eta}`;
  }
  return without.length <= room ? without : `${without.slice(0, Math.max(0, room - 1))}…`;
}

export interface ProgressSink {
  progress(p: Progress): void;
  /** A line of text among the progress (a note, the estimate): it never lands inside the bar's line. */
  log(line: string): void;
  /** Clears the line; the display may be used again after. */
  end(): void;
}

export interface TerminalIo {
  write(s: string): void;
  columns(): number;
  /** Milliseconds, from any origin. */
  now(): number;
  /** The line became visible, or was cleared (the caller's hooks: Ctrl-C handling). */
  shown?(visible: boolean): void;
}

/** The one-line display; all it does to the terminal goes through `io`. */
export class TerminalProgress implements ProgressSink {
  private visible = false;
  private last: Progress | null = null;
  private lastKey = '';
  private lastDrawAt = -Infinity;

  constructor(private readonly io: TerminalIo) {}

  progress(p: Progress): void {
    if (p.total > 0 && p.done >= p.total) {
      // a finished stage leaves nothing behind: what follows (the next stage, a result) starts clean
      this.last = null;
      this.clear();
      return;
    }
    this.last = p;
    const key = `${p.stage}\0${p.layer}`;
    const t = this.io.now();
    if (this.visible && key === this.lastKey && t - this.lastDrawAt < MIN_REDRAW_MS) return;
    this.lastKey = key;
    this.lastDrawAt = t;
    this.draw(p);
  }

  log(line: string): void {
    const was = this.visible;
    this.clear();
    this.io.write(`${line}\n`);
    if (was && this.last) this.draw(this.last);
  }

  end(): void {
    this.last = null;
    this.clear();
  }

  /** Clears the line but keeps the last event, so the next one redraws (Ctrl-C uses it). */
  clear(): void {
    if (!this.visible) return;
    this.io.write(CLEAR_LINE);
    this.visible = false;
    this.io.shown?.(false);
  }

  private draw(p: Progress): void {
    this.io.write(`${CLEAR_LINE}${progressFrame(p, this.io.columns())}`);
    if (!this.visible) {
      this.visible = true;
      this.io.shown?.(true);
    }
  }
}

/** A line per event. */
export class PlainProgress implements ProgressSink {
  constructor(private readonly write: (s: string) => void) {}
  progress(p: Progress): void {
    this.write(`${plainLine(p)}\n`);
  }
  log(line: string): void {
    this.write(`${line}\n`);
  }
  end(): void {}
}

/** Progress switched off (--quiet); notes still reach stderr, as the caller decides. */
export class NoProgress implements ProgressSink {
  constructor(private readonly write: (s: string) => void) {}
  progress(): void {}
  log(line: string): void {
    this.write(`${line}\n`);
  }
  end(): void {}
}
