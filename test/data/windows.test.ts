import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RankwiseError } from '../../main/core/errors.ts';
import { loadTokenizer } from '../../main/model/tokenizer.ts';
import type { TextTokenizer } from '../../main/model/tokenizer.ts';
import { loadWindows, makeWindows, tokenizeSource } from '../../main/data/windows.ts';
import { mulberry32 } from '../../main/model/prng.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { badInputFrom } from '../helpers/errors.ts';

/** 0, 1, 2, … n−1: every window's content then says exactly where it came from. */
const ramp = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

describe("'first' windows", () => {
  it('are consecutive, non-overlapping and drop the partial tail', () => {
    const windows = makeWindows(ramp(1000), { window: 300 });
    expect(windows).toHaveLength(3);
    windows.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(ramp(300), (x) => x + 300 * i)));
  });

  it('take exactly `count` from the start', () => {
    const windows = makeWindows(ramp(1000), { window: 100, count: 4 });
    expect(windows.map((w) => w[0])).toEqual([0, 100, 200, 300]);
    expect(makeWindows(ramp(1000), { window: 100, count: 10 })).toHaveLength(10);
  });

  it('cover the text exactly when it divides evenly', () => {
    const windows = makeWindows(ramp(512), { window: 256 });
    expect(windows.map((w) => [w[0], w[255]])).toEqual([
      [0, 255],
      [256, 511],
    ]);
  });

  it('are copies, not views of the ids', () => {
    const ids = ramp(10);
    const [w] = makeWindows(ids, { window: 5, count: 1 });
    w[0] = 99;
    expect(ids[0]).toBe(0);
  });
});

describe("'random' windows", () => {
  const ids = ramp(10_000);

  it('are the same for the same seed and differ for another', () => {
    const a = makeWindows(ids, { window: 64, count: 20, sampling: 'random', seed: 7 });
    const b = makeWindows(ids, { window: 64, count: 20, sampling: 'random', seed: 7 });
    const c = makeWindows(ids, { window: 64, count: 20, sampling: 'random', seed: 8 });
    expect(a.map((w) => w[0])).toEqual(b.map((w) => w[0]));
    expect(a.map((w) => w[0])).not.toEqual(c.map((w) => w[0]));
  });

  it('are whole runs of the text, inside its bounds', () => {
    const windows = makeWindows(ids, { window: 64, count: 500, sampling: 'random', seed: 1 });
    for (const w of windows) {
      expect(w).toHaveLength(64);
      expect(w[63] - w[0]).toBe(63);
      expect(w[0]).toBeGreaterThanOrEqual(0);
      expect(w[63]).toBeLessThan(ids.length);
    }
  });

  it('may ask for more windows than fit without overlap', () => {
    expect(makeWindows(ramp(100), { window: 50, count: 7, sampling: 'random' })).toHaveLength(7);
  });

  it('default to as many as fit without overlap, and can reach both ends', () => {
    expect(makeWindows(ramp(1000), { window: 100, sampling: 'random' })).toHaveLength(10);
    const starts = new Set(
      makeWindows(ramp(12), { window: 10, count: 200, sampling: 'random' }).map((w) => w[0]),
    );
    expect([...starts].sort()).toEqual([0, 1, 2]);
  });

  it('come from a deterministic generator in [0, 1)', () => {
    const next = mulberry32(42);
    const draws = Array.from({ length: 1000 }, next);
    expect(draws.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Array.from({ length: 1000 }, mulberry32(42))).toEqual(draws);
  });
});

describe('window errors', () => {
  it('a text shorter than one window names the file', () => {
    const e = badInputFrom(() => makeWindows(ramp(100), { window: 512, source: 'story.txt' }));
    expect(e.file).toBe('story.txt');
    expect(e.setting).toBe('window');
    expect(e.message).toContain(
      'has 100 tokens, too few for window 512: use a longer text or a smaller window',
    );
  });

  it("'first' asking for more windows than there are says how many there are", () => {
    const e = badInputFrom(() => makeWindows(ramp(1000), { window: 100, count: 11, source: 'eval.txt' }));
    expect(e.file).toBe('eval.txt');
    expect(e.message).toMatch(/enough for 10 windows of 100, but 11 were asked for/);
  });

  it('a window below 2 or not whole', () => {
    expect(badInputFrom(() => makeWindows(ramp(10), { window: 1 })).message).toMatch(
      /^window must be a whole number of at least 2 \(got 1\)/,
    );
    expect(badInputFrom(() => makeWindows(ramp(10), { window: 2.5 })).message).toMatch(/got 2\.5/);
  });

  it('a count of zero, a negative or a fraction', () => {
    for (const count of [0, -3, 1.5]) {
      const e = badInputFrom(() => makeWindows(ramp(100), { window: 10, count }));
      expect(e.message).toMatch(
        new RegExp(`number of windows must be a whole number of at least 1 \\(got ${count}\\)`),
      );
    }
    expect(
      badInputFrom(() => makeWindows(ramp(100), { window: 10, count: 0, sampling: 'random' })).message,
    ).toMatch(/at least 1/);
  });

  it('an unknown sampling or a seed that is not whole', () => {
    const sampling = 'last' as unknown as 'first';
    expect(badInputFrom(() => makeWindows(ramp(100), { window: 10, sampling })).message).toMatch(
      /'first' or 'random'/,
    );
    expect(
      badInputFrom(() => makeWindows(ramp(100), { window: 10, sampling: 'random', seed: 0.5 })).message,
    ).toMatch(/seed/);
  });
});

describe('the TinyStories excerpt through the text protocol', () => {
  let tok: TextTokenizer;
  const tmp = tempDir();
  beforeAll(async () => {
    tok = await loadTokenizer(STORIES_DIR);
  });
  afterAll(tmp.cleanup);

  it('is tokenized once with one BOS and cut into 767 windows of 512', async () => {
    const loaded = await loadWindows(TINYSTORIES_TEXT, tok, { window: 512 });
    expect(loaded.totalTokens).toBe(393_019);
    expect(loaded.source).toBe(TINYSTORIES_TEXT);
    expect(loaded.windows).toHaveLength(767); // floor(393,019 / 512); the last 315 tokens are dropped
    expect(loaded.windows[0][0]).toBe(1);
    expect(loaded.windows.slice(1).every((w) => !w.includes(1))).toBe(true);
    const ids = await tokenizeSource(TINYSTORIES_TEXT, tok);
    expect(Array.from(loaded.windows[766])).toEqual(Array.from(ids.subarray(766 * 512, 767 * 512)));
  });

  it('names the file when it is too short for one window', async () => {
    const file = path.join(tmp.dir, 'short.txt');
    fs.writeFileSync(file, 'Once upon a time.');
    const error = await loadWindows(file, tok, { window: 512 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RankwiseError);
    expect((error as RankwiseError).file).toBe(file);
    expect((error as RankwiseError).message).toMatch(/has \d+ tokens, too few for window 512/);
  });
});
