import { describe, expect, it } from 'vitest';
import { X_TICK_GAP } from '../../main/core/charts/allocation.ts';
import { minTickGap } from '../../main/core/charts/geometry.ts';
import { allocationLayout, labelStride, rankTicks } from '../../renderer/charts/allocation-data.ts';
import type { ChartBox } from '../../renderer/charts/box.ts';
import { isSelectKey, nextIndex } from '../../renderer/charts/keyboard.ts';
import {
  cacheBytes,
  memoryFigures,
  sequencesThatFit,
  weightsBytes,
  weightsVsCache,
} from '../../renderer/charts/memory-data.ts';
import {
  errorFloor,
  keptFraction,
  paretoFront,
  profileLayout,
  profileSeries,
} from '../../renderer/charts/profile-data.ts';

const BOX: ChartBox = { width: 400, height: 200, margin: { top: 10, right: 10, bottom: 40, left: 50 } };
const INNER = { width: 340, height: 150 };
const GiB = 2 ** 30;

describe('allocation bars', () => {
  const layers = [
    { layer: 0, kRank: 8, vRank: 32, error: 0.01 },
    { layer: 1, kRank: 16, vRank: 4, error: 0.02 },
    { layer: 2, kRank: 32, vRank: 32, error: 0 },
  ];
  const layout = allocationLayout(layers, 32, BOX, new Set([1]));

  it('makes one group per layer, left to right inside the plot, with a K and a V bar', () => {
    expect(layout.inner).toEqual(INNER);
    expect(layout.groups.map((g) => g.layer)).toEqual([0, 1, 2]);
    const xs = layout.groups.map((g) => g.x);
    expect(xs[0]).toBeGreaterThanOrEqual(0);
    expect(xs[0]).toBeLessThan(xs[1]);
    expect(xs[2] + layout.groups[2].width).toBeLessThanOrEqual(INNER.width + 1e-9);
    for (const g of layout.groups) {
      const [k, v] = g.bars;
      expect(k.side).toBe('k');
      expect(v.side).toBe('v');
      expect(k.x + k.width).toBeLessThanOrEqual(v.x);
      expect(v.x + v.width).toBeLessThanOrEqual(g.width + 1e-9);
    }
  });

  it('scales bar heights linearly to the head dimension, a full rank reaching the top', () => {
    const [g0, g1, g2] = layout.groups;
    expect(g2.bars[0].height).toBeCloseTo(INNER.height);
    expect(g2.bars[0].y).toBeCloseTo(0);
    expect(g0.bars[0].height).toBeCloseTo(INNER.height / 4);
    expect(g0.bars[0].y + g0.bars[0].height).toBeCloseTo(INNER.height);
    expect(g1.bars[1].height).toBeCloseTo(INNER.height / 8);
  });

  it('marks hand-set layers and describes each layer for screen readers', () => {
    expect(layout.groups.map((g) => g.edited)).toEqual([false, true, false]);
    expect(layout.groups[1].label).toBe(
      'Layer 1: key rank 16, value rank 4 of 32 per head; layer output error 0.020; set by hand',
    );
  });

  it('labels rank ticks from 0 to d and thins layer labels on deep models', () => {
    expect(layout.yTicks[0]).toMatchObject({ value: 0, at: INNER.height });
    expect(layout.yTicks.at(-1)!.value).toBe(32);
    expect(layout.xTicks.map((t) => t.label)).toEqual(['0', '1', '2']);
    expect(rankTicks(64)).toEqual([0, 8, 16, 24, 32, 40, 48, 56, 64]);
    expect(rankTicks(6)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(labelStride(80)).toBe(5);
    const deep = allocationLayout(
      Array.from({ length: 80 }, (_, layer) => ({ layer, kRank: 8, vRank: 8, error: 0 })),
      64,
      BOX,
    );
    // every 5th layer by stride, then thinned so that no two labels come closer than their width
    expect(deep.xTicks.length).toBeLessThanOrEqual(16);
    expect(minTickGap(deep.xTicks)).toBeGreaterThanOrEqual(X_TICK_GAP);
    expect(deep.groups).toHaveLength(80);
  });
});

describe('error-rank profiles', () => {
  const points = [
    { kRank: 8, vRank: 8, error: 0.3 },
    { kRank: 8, vRank: 16, error: 0.2 },
    { kRank: 16, vRank: 8, error: 0.25 }, // same size as (8,16), worse: off the front
    { kRank: 16, vRank: 16, error: 0.05 },
    { kRank: 8, vRank: 32, error: 0.1 }, // same size as (16,16)... bigger by 8, but worse: dominated
    { kRank: 32, vRank: 32, error: 0 },
  ];

  it('keeps only the Pareto front, sorted by cache kept', () => {
    const front = paretoFront(points, 32);
    expect(front.map((p) => [p.kRank, p.vRank])).toEqual([
      [8, 8],
      [8, 16],
      [16, 16],
      [32, 32],
    ]);
    expect(front.map((p) => p.kept)).toEqual([0.25, 0.375, 0.5, 1]);
    expect(keptFraction(4, 12, 32)).toBe(0.25);
  });

  it('builds series only for the layers that have arrived, with each layer’s chosen point', () => {
    const series = profileSeries(
      [
        { layer: 0, keySpace: 'pre-rope', points, cached: false },
        undefined,
        { layer: 2, keySpace: 'post-rope', points, cached: true },
      ],
      32,
      new Map([
        [0, { kRank: 16, vRank: 8 }],
        [2, { kRank: 4, vRank: 4 }],
      ]),
    );
    expect(series.map((s) => s.layer)).toEqual([0, 2]);
    // a hand-set point off the front is still marked where it is
    expect(series[0].chosen).toMatchObject({ kRank: 16, vRank: 8, error: 0.25, kept: 0.375 });
    // a pair the profile never measured marks nothing
    expect(series[1].chosen).toBeNull();
  });

  it('puts the log axis floor under the smallest positive error and maps points inside the plot', () => {
    const series = profileSeries([{ layer: 0, keySpace: 'pre-rope', points, cached: false }], 32);
    expect(errorFloor(series)).toBeCloseTo(0.025);
    expect(errorFloor([])).toBe(1e-6);
    const layout = profileLayout(series, BOX);
    const full = layout.position({ kept: 1, error: 0 });
    expect(full.x).toBeCloseTo(INNER.width);
    expect(full.y).toBeCloseTo(INNER.height); // an exact point sits on the floor
    const worst = layout.position({ kept: 0.25, error: 0.3 });
    expect(worst.x).toBeCloseTo(INNER.width / 4);
    expect(worst.y).toBeGreaterThan(0);
    expect(worst.y).toBeLessThan(layout.position({ kept: 0.5, error: 0.05 }).y);
    expect(layout.path(series[0].front)).toMatch(/^M/);
    expect(layout.xTicks.map((t) => t.label)).toContain('50 %');
    expect(layout.yTicks.length).toBeGreaterThanOrEqual(2);
  });
});

describe('memory math', () => {
  const perToken = { original: 131072, compressed: 49152 }; // 128 KiB → 48 KiB per token

  it('counts cache bytes at a context length and batch, and what compression saves', () => {
    expect(cacheBytes(131072, 32768, 8)).toBe(32 * GiB);
    const fig = memoryFigures({
      perToken,
      weightsBytes: 14 * GiB,
      contextTokens: 32768,
      batch: 8,
      memoryBytes: 80 * GiB,
    });
    expect(fig.cache).toEqual({ original: 32 * GiB, compressed: 12 * GiB });
    expect(fig.saved).toBe(20 * GiB);
    expect(fig.totals).toEqual({ original: 46 * GiB, compressed: 26 * GiB });
    expect(fig.kept).toBeCloseTo(0.375);
  });

  it('counts whole sequences that fit beside the weights, before and after', () => {
    // 66 GiB free; 4 GiB per 32K sequence before, 1.5 GiB after
    expect(sequencesThatFit(80 * GiB, 14 * GiB, 131072, 32768)).toBe(16);
    expect(sequencesThatFit(80 * GiB, 14 * GiB, 49152, 32768)).toBe(44);
    const fig = memoryFigures({
      perToken,
      weightsBytes: 14 * GiB,
      contextTokens: 32768,
      batch: 1,
      memoryBytes: 80 * GiB,
    });
    expect(fig.sequences).toEqual({ original: 16, compressed: 44, extra: 28 });
    // the weights alone do not fit: nothing does
    expect(sequencesThatFit(8 * GiB, 14 * GiB, 49152, 32768)).toBe(0);
    expect(sequencesThatFit(8 * GiB, 1 * GiB, 0, 32768)).toBe(0);
  });

  it('takes the weights at the checkpoint dtype and draws weights and cache on one scale', () => {
    expect(weightsBytes({ parameters: 7e9, dtype: 'BF16' })).toBe(14e9);
    expect(weightsBytes({ parameters: 1e6, dtype: 'F32' })).toBe(4e6);
    const fig = memoryFigures({
      perToken,
      weightsBytes: 14 * GiB,
      contextTokens: 32768,
      batch: 8,
      memoryBytes: 80 * GiB,
    });
    const [before, after] = weightsVsCache(fig, 14 * GiB, 460);
    expect(before.weights.width).toBeCloseTo((14 / 46) * 460);
    expect(before.cache.x).toBeCloseTo(before.weights.width);
    expect(before.weights.width + before.cache.width).toBeCloseTo(460);
    expect(after.cache.width).toBeCloseTo((12 / 46) * 460);
  });
});

describe('keyboard movement', () => {
  it('moves one layer with the arrows, to the ends with Home and End, and stays inside', () => {
    expect(nextIndex(2, 'ArrowRight', 5)).toBe(3);
    expect(nextIndex(2, 'ArrowDown', 5)).toBe(3);
    expect(nextIndex(2, 'ArrowLeft', 5)).toBe(1);
    expect(nextIndex(4, 'ArrowRight', 5)).toBe(4);
    expect(nextIndex(0, 'ArrowUp', 5)).toBe(0);
    expect(nextIndex(2, 'Home', 5)).toBe(0);
    expect(nextIndex(2, 'End', 5)).toBe(4);
    expect(nextIndex(2, 'a', 5)).toBeNull();
    expect(nextIndex(0, 'ArrowRight', 0)).toBeNull();
    expect(isSelectKey('Enter')).toBe(true);
    expect(isSelectKey(' ')).toBe(true);
    expect(isSelectKey('Tab')).toBe(false);
  });
});
