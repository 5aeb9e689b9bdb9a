/**
 * Progress on stderr: the terminal's one-line display replayed as frames from events, a width and a clock
 * (no terminal needed), and plain lines everywhere else.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

import type { Progress } from '../../main/core/progress.ts';
import {
  CLEAR_LINE,
  MIN_REDRAW_MS,
  PlainProgress,
  plainLine,
  progressFrame,
  TerminalProgress,
} from '../../main/cli/progress-display.ts';
import { clearProgress, progressDisplay, setPlainProgress } from '../../main/cli/output.ts';
import { PROGRESS_LINE } from '../fuzz/child.ts';

const ev = (
  stage: string,
  layer: number,
  done: number,
  total: number,
  etaSeconds: number | null,
  step?: number,
) => ({ stage, layer, done, total, etaSeconds, ...(step === undefined ? {} : { step }) }) satisfies Progress;

describe('a frame', () => {
  it('has the stage, the layer, a bar, the counts and the ETA', () => {
    expect(progressFrame(ev('profile', 2, 3, 5, 12), 80)).toBe(
      'profile · layer 3  [██████████████████░░░░░░░░░░░░]  3/5  60 %  ETA 12 s',
    );
    expect(progressFrame(ev('train keys', 0, 30, 120, 75, 30), 100)).toBe(
      'train keys · layer 1 · step 30  [████████░░░░░░░░░░░░░░░░░░░░░░]  30/120  25 %  ETA 1 min 15 s',
    );
    // before the first unit the ETA is unknown; work on the embedding or head has no layer
    expect(progressFrame(ev('eval', -1, 0, 7, null), 60)).toBe(
      'eval  [░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░]  0/7  0 %  ETA –',
    );
  });

  it('never reaches the last column: the bar shrinks, then goes, then the line is cut', () => {
    const p = ev('profile', 2, 3, 5, 12);
    const at = (w: number) => progressFrame(p, w);
    expect(at(60)).toBe('profile · layer 3  [██████████░░░░░░░]  3/5  60 %  ETA 12 s');
    expect(at(45)).toBe('profile · layer 3  3/5  60 %  ETA 12 s');
    expect(at(30)).toBe('profile · layer 3  3/5  60 %…');
    for (const w of [20, 30, 45, 50, 60, 80, 200]) expect(at(w).length).toBeLessThan(w);
  });
});

/** Replays events on the terminal display with a fake clock and width; returns what it wrote. */
function replay(steps: [number, (d: TerminalProgress) => void][], width = 80) {
  let now = 0;
  const writes: string[] = [];
  const shown: boolean[] = [];
  const d = new TerminalProgress({
    write: (s) => writes.push(s),
    columns: () => width,
    now: () => now,
    shown: (v) => shown.push(v),
  });
  for (const [t, act] of steps) {
    now = t;
    act(d);
  }
  return { writes, shown };
}

describe('the terminal display', () => {
  it('redraws one line in place, throttled, around notes, and clears it when the stage ends', () => {
    const a = ev('capture', 0, 1, 2, null);
    const b = ev('capture', 1, 2, 2, 0);
    const t1 = ev('train keys', 1, 1, 60, 59, 1);
    const t2 = ev('train keys', 1, 2, 60, 58, 2);
    const t3 = ev('train keys', 1, 3, 60, 57, 3);
    const { writes, shown } = replay([
      [0, (d) => d.progress(a)],
      [10, (d) => d.progress(b)], // the stage is done: the line goes
      [20, (d) => d.progress(t1)],
      [20 + MIN_REDRAW_MS - 1, (d) => d.progress(t2)], // too soon after the last frame: skipped
      [20 + MIN_REDRAW_MS, (d) => d.progress(t3)],
      [200, (d) => d.log('rankwise compress: a note')],
      [300, (d) => d.end()],
      [310, (d) => d.end()], // nothing left to clear
    ]);
    expect(writes).toEqual([
      `${CLEAR_LINE}${progressFrame(a, 80)}`,
      CLEAR_LINE,
      `${CLEAR_LINE}${progressFrame(t1, 80)}`,
      `${CLEAR_LINE}${progressFrame(t3, 80)}`,
      CLEAR_LINE,
      'rankwise compress: a note\n',
      `${CLEAR_LINE}${progressFrame(t3, 80)}`,
      CLEAR_LINE,
    ]);
    expect(shown).toEqual([true, false, true, false, true, false]);
  });

  it('draws a new layer at once, however soon', () => {
    const { writes } = replay([
      [0, (d) => d.progress(ev('profile', 0, 1, 5, 4))],
      [1, (d) => d.progress(ev('profile', 1, 2, 5, 3))],
    ]);
    expect(writes).toHaveLength(2);
  });

  it('follows the terminal width from frame to frame', () => {
    let width = 80;
    const writes: string[] = [];
    const d = new TerminalProgress({ write: (s) => writes.push(s), columns: () => width, now: () => 0 });
    d.progress(ev('profile', 0, 1, 5, 4));
    width = 40;
    d.progress(ev('profile', 1, 2, 5, 3));
    expect(writes.map((w) => w.slice(CLEAR_LINE.length).length)).toEqual([
      progressFrame(ev('profile', 0, 1, 5, 4), 80).length,
      progressFrame(ev('profile', 1, 2, 5, 3), 40).length,
    ]);
    expect(writes[1].length - CLEAR_LINE.length).toBeLessThan(40);
  });
});

describe('plain lines', () => {
  it('one per event, in the format scripts read', () => {
    const lines: string[] = [];
    const d = new PlainProgress((s) => lines.push(s));
    d.progress(ev('eval', -1, 0, 7, null));
    d.progress(ev('profile', 2, 3, 5, 12));
    d.log('a note');
    d.end();
    expect(lines).toEqual(['[eval] 0/7\n', '[profile] layer 3 3/5, ETA 12 s\n', 'a note\n']);
    for (const l of lines.slice(0, 2)) expect(l.trimEnd()).toMatch(PROGRESS_LINE);
    expect(plainLine(ev('profile', 2, 3, 5, 0.2))).toBe('[profile] layer 3 3/5, ETA < 1 s');
  });
});

describe('progress on stderr', () => {
  let written = '';
  const capture = () => {
    written = '';
    return vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      written += String(s);
      return true;
    });
  };
  const onTerminal = (tty: boolean) => {
    Object.defineProperty(process.stderr, 'isTTY', { value: tty, configurable: true });
    Object.defineProperty(process.stderr, 'columns', { value: 80, configurable: true });
  };
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
    onTerminal(false);
    setPlainProgress(false);
  });

  it('is plain lines on a pipe', () => {
    onTerminal(false);
    capture();
    progressDisplay().progress(ev('profile', 2, 3, 5, 12));
    expect(written).toBe('[profile] layer 3 3/5, ETA 12 s\n');
  });

  it.each([
    ['CI', () => vi.stubEnv('CI', 'true')],
    ['TERM=dumb', () => vi.stubEnv('TERM', 'dumb')],
    ['--json', () => setPlainProgress(true)],
  ])('is plain lines on a terminal under %s', (_, arrange) => {
    onTerminal(true);
    vi.stubEnv('CI', '');
    vi.stubEnv('TERM', 'xterm-256color');
    arrange();
    capture();
    progressDisplay().progress(ev('profile', 2, 3, 5, 12));
    expect(written).toBe('[profile] layer 3 3/5, ETA 12 s\n');
  });

  it('is the redrawn line on a terminal, which listens for Ctrl-C only while it is shown', () => {
    onTerminal(true);
    vi.stubEnv('CI', '');
    vi.stubEnv('TERM', 'xterm-256color');
    capture();
    const before = process.listenerCount('SIGINT');
    const d = progressDisplay();
    d.progress(ev('profile', 2, 3, 5, 12));
    expect(written).toBe(`${CLEAR_LINE}${progressFrame(ev('profile', 2, 3, 5, 12), 80)}`);
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    // what index.ts does before it prints an error
    clearProgress();
    expect(written.endsWith(CLEAR_LINE)).toBe(true);
    expect(process.listenerCount('SIGINT')).toBe(before);
  });

  it('on Ctrl-C beside a job that cancels, clears the line and leaves the signal to the job', () => {
    onTerminal(true);
    vi.stubEnv('CI', '');
    vi.stubEnv('TERM', 'xterm-256color');
    capture();
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    const cancel = vi.fn();
    process.on('SIGINT', cancel);
    try {
      const d = progressDisplay();
      d.progress(ev('profile', 2, 3, 5, 12));
      process.emit('SIGINT');
      expect(written.endsWith(CLEAR_LINE)).toBe(true);
      expect(cancel).toHaveBeenCalledOnce();
      expect(kill).not.toHaveBeenCalled();
    } finally {
      process.off('SIGINT', cancel);
    }
  });

  it('on Ctrl-C with nothing else listening, clears the line and dies of the signal as before', () => {
    onTerminal(true);
    vi.stubEnv('CI', '');
    vi.stubEnv('TERM', 'xterm-256color');
    capture();
    const others = process.listeners('SIGINT');
    for (const l of others) process.off('SIGINT', l);
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    try {
      progressDisplay().progress(ev('profile', 2, 3, 5, 12));
      process.emit('SIGINT');
      expect(written.endsWith(CLEAR_LINE)).toBe(true);
      expect(kill).toHaveBeenCalledWith(process.pid, 'SIGINT');
      expect(process.listenerCount('SIGINT')).toBe(0);
    } finally {
      for (const l of others) process.on('SIGINT', l);
    }
  });
});
