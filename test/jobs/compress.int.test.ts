import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadWindows } from '../../main/data/windows.ts';
import { loadTokenizer } from '../../main/model/tokenizer.ts';
import { rankGrid } from '../../main/core/memory.ts';
import { compress } from '../../main/jobs/compress.ts';
import { allocateByBudget, allocateByMemory } from '../../main/core/allocate/index.ts';
import { runCli } from '../helpers/cli.ts';
import { STORIES_DIR, TINYSTORIES_TEXT } from '../helpers/paths.ts';

const small = {
  modelDir: STORIES_DIR,
  calib: TINYSTORIES_TEXT,
  eval: TINYSTORIES_TEXT,
  window: 128,
  calibWindows: 8,
  evalWindows: 6,
} as const;

describe('rank grid', () => {
  it('is the multiples of max(1, ⌊d/8⌋) up to d', () => {
    expect(rankGrid(8)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(rankGrid(128)).toEqual([16, 32, 48, 64, 80, 96, 112, 128]);
    expect(rankGrid(4)).toEqual([1, 2, 3, 4]);
  });
});

describe('compress on stories260K', () => {
  it('--kv-fraction: profiles every layer on the grid and allocates exactly as the allocator does', async () => {
    const r = await compress({
      ...small,
      method: 'kqsvd',
      kvFraction: 0.5,
      keySpace: 'pre-rope',
      objective: 'layer',
    });
    expect(r.profile).toHaveLength(5);
    for (const p of r.profile!) expect(p).toHaveLength(64);
    expect(r.kvFraction).toBeLessThanOrEqual(0.5 + 1e-12);
    expect(r.kvBytesPerToken.original).toBe(1280);
    const profiles = r.profile!.map((pts, layer) => ({
      layer,
      points: pts,
    }));
    const direct = allocateByMemory(profiles, { kvHeads: 4, headDim: 8, bytesPerElement: 4 }, 0.5);
    expect(r.layers.map((l) => [l.kRank, l.vRank])).toEqual(direct.layers.map((l) => [l.kRank, l.vRank]));
    // Compression costs perplexity, but a half-size cache from a good method keeps the model usable.
    expect(r.perplexity.compressed).toBeGreaterThan(r.perplexity.original);
    expect(r.perplexity.compressed).toBeLessThan(3 * r.perplexity.original);
    expect(Object.keys(r.seconds)).toEqual(
      expect.arrayContaining(['load', 'capture', 'profile', 'allocate', 'eval']),
    );
  });

  it('--budget: meets the weighted mean error budget at the smallest cache the profiles allow', async () => {
    const r = await compress({ ...small, method: 'ksvd', budget: 0.05, keySpace: 'pre-rope' });
    const meanError = r.layers.reduce((a, l) => a + l.error, 0) / r.layers.length;
    expect(meanError).toBeLessThanOrEqual(0.05);
    expect(r.allocation).toMatchObject({ kind: 'budget', feasible: true });
    const profiles = r.profile!.map((pts, layer) => ({
      layer,
      points: pts,
    }));
    const direct = allocateByBudget(profiles, { kvHeads: 4, headDim: 8, bytesPerElement: 4 }, 0.05);
    expect(r.kvBytesPerToken.compressed).toBe(direct.totalBytesPerToken);
  });

  it('auto key space picks, per layer, the space whose profile is lower', async () => {
    const r = await compress({ ...small, method: 'kqsvd', ranks: { k: 4, v: 8 }, keySpace: 'auto' });
    const pre = await compress({ ...small, method: 'kqsvd', ranks: { k: 4, v: 8 }, keySpace: 'pre-rope' });
    const post = await compress({ ...small, method: 'kqsvd', ranks: { k: 4, v: 8 }, keySpace: 'post-rope' });
    r.layers.forEach((l, i) => {
      expect(l.error).toBeCloseTo(Math.min(pre.layers[i].error, post.layers[i].error), 12);
      expect(l.keySpace).toBe(pre.layers[i].error <= post.layers[i].error ? 'pre-rope' : 'post-rope');
    });
  });

  it('eigen with a budget runs EigenAttention’s threshold sweep: every layer under budget', async () => {
    const r = await compress({ ...small, method: 'eigen', budget: 0.1 });
    for (const l of r.layers) expect(l.error).toBeLessThan(0.1);
    expect(r.layers.some((l) => l.kRank < 8 || l.vRank < 8)).toBe(true);
  });

  it('takes every window of a short calibration text when --calib-windows is not given', async () => {
    const short = fileURLToPath(new URL('../../assets/demo/calibration.txt', import.meta.url));
    const available = (await loadWindows(short, await loadTokenizer(STORIES_DIR), { window: 128 })).windows
      .length;
    expect(available).toBeLessThan(32);
    const r = await compress({
      ...small,
      calib: short,
      calibWindows: undefined,
      method: 'ksvd',
      ranks: { k: 4, v: 4 },
    });
    expect(r.calibWindows + r.heldoutWindows).toBe(available);
  });

  it('thin keys leave values at full dimension and count them in the cache', async () => {
    const r = await compress({ ...small, method: 'thinkeys', ranks: { k: 4, v: 8 } });
    expect(r.layers.every((l) => l.vRank === 8 && l.kRank === 4)).toBe(true);
    expect(r.kvBytesPerToken.compressed).toBe((4 + 8) * 4 * 5 * 4);
  });
});

describe('rankwise compress (CLI)', () => {
  it('--json prints the contract of ARCHITECTURE.md §9', async () => {
    const args = ['compress', STORIES_DIR, '--calib', TINYSTORIES_TEXT, '--eval', TINYSTORIES_TEXT];
    const res = await runCli([
      ...args,
      '--method',
      'ksvd',
      '--k-rank',
      '4',
      '--v-rank',
      '6',
      '--window',
      '128',
      '--calib-windows',
      '4',
      '--eval-windows',
      '4',
      '--json',
      '-q',
    ]);
    expect(res.code).toBe(0);
    const j = JSON.parse(res.stdout);
    for (const key of [
      'model',
      'method',
      'key_space',
      'window',
      'calib_windows',
      'eval_windows',
      'perplexity',
      'kv_bytes_per_token',
      'layers',
      'seconds',
    ]) {
      expect(j).toHaveProperty(key);
    }
    expect(j.kv_bytes_per_token).toEqual({ original: 1280, compressed: (4 + 6) * 4 * 5 * 4 });
    expect(j.layers[0]).toMatchObject({ k_rank: 4, v_rank: 6 });
    expect(j.profile).toBeUndefined();
  });

  it.each([
    [['--method', 'ksvd', '--budget=-1'], /--budget must be a positive number/],
    [['--method', 'ksvd', '--budget', '0.1', '--kv-fraction', '0.5'], /exactly one of/],
    [['--method', 'ksvd', '--kv-fraction', '1.5'], /--kv-fraction must be in \(0, 1\]/],
    [
      ['--method', 'ksvd', '--k-rank', '9', '--v-rank', '4'],
      /--k-rank must be an integer from 1 to the head dimension 8/,
    ],
    [['--method', 'nope', '--budget', '0.1'], /--method must be one of/],
    [
      ['--method', 'eigen', '--budget', '0.1', '--key-space', 'post-rope'],
      /post-rope is not available for eigen/,
    ],
    [['--method', 'ksvd', '--k-rank', '4'], /--k-rank and --v-rank go together/],
  ])('bad option %j exits 2 with a clear message', async (extra, pattern) => {
    const res = await runCli([
      'compress',
      STORIES_DIR,
      '--calib',
      TINYSTORIES_TEXT,
      '--eval',
      TINYSTORIES_TEXT,
      ...extra,
      '--window',
      '64',
      '--calib-windows',
      '2',
      '--eval-windows',
      '1',
      '-q',
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(pattern);
  });
});
