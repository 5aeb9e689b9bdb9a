/**
 * The rank chart: per layer a K bar and a V bar, the per-head ranks against the head dimension (a bar at
 * full height keeps that side whole). Shared by the wizard and the report like profile.ts.
 */
import { formatBytes, formatError } from '../format.ts';
import { rankGrid } from '../memory.ts';
import { bands, innerSize, linearScale, round2, thinTicks, type ChartBox, type Tick } from './geometry.ts';

export interface LayerRanks {
  layer: number;
  kRank: number;
  vRank: number;
  error: number;
}

export interface Bar {
  side: 'k' | 'v';
  rank: number;
  /** Relative to the group's x. */
  x: number;
  y: number;
  width: number;
  height: number;
  tip: string;
}

export interface BarGroup {
  layer: number;
  kRank: number;
  vRank: number;
  error: number;
  /** Set by hand in the review step. */
  edited: boolean;
  x: number;
  width: number;
  bars: [Bar, Bar];
  /** The layer's numbers, for a tooltip or a screen reader. */
  label: string;
}

export interface AllocationChartModel {
  box: ChartBox;
  groups: BarGroup[];
  xTicks: Tick[];
  yTicks: Tick[];
  inner: { width: number; height: number };
}

/** Horizontal room of a layer number under its group: labels closer than this are dropped. */
export const X_TICK_GAP = 24;

export function layerLabel(l: LayerRanks, headDim: number, edited: boolean, bytesPerRank?: number): string {
  const bytes =
    bytesPerRank !== undefined && bytesPerRank > 0
      ? `; ${formatBytes((l.kRank + l.vRank) * bytesPerRank)} per token`
      : '';
  return (
    `Layer ${l.layer}: key rank ${l.kRank}, value rank ${l.vRank} of ${headDim} per head; ` +
    `layer output error ${formatError(l.error)}${bytes}${edited ? '; set by hand' : ''}`
  );
}

/** Every n-th layer is labelled so that labels never crowd: about 16 at most. */
export function labelStride(layers: number, maxLabels = 16): number {
  return Math.max(1, Math.ceil(layers / maxLabels));
}

/** 0 and the engine's rank grid (multiples of ⌊d/8⌋, and d itself): the ranks a bar can take. */
export function rankTicks(headDim: number): number[] {
  return [0, ...rankGrid(headDim)];
}

export function allocationChart(
  layers: readonly LayerRanks[],
  headDim: number,
  box: ChartBox,
  edited: ReadonlySet<number> = new Set(),
  bytesPerRank?: number,
): AllocationChartModel {
  const inner = innerSize(box);
  const x = bands(layers.length, inner.width, 0.25, 0.1);
  const side = bands(2, x.bandwidth, 0.08, 0);
  const y = linearScale([0, Math.max(1, headDim)], [inner.height, 0]);
  const bar = (l: LayerRanks, s: 'k' | 'v', rank: number): Bar => ({
    side: s,
    rank,
    x: round2(side.start(s === 'k' ? 0 : 1)),
    y: round2(y(rank)),
    width: round2(side.bandwidth),
    height: round2(inner.height - y(rank)),
    tip: `Layer ${l.layer}: ${s === 'k' ? 'key' : 'value'} rank ${rank} of ${headDim} per head`,
  });
  const groups = layers.map((l, i): BarGroup => ({
    layer: l.layer,
    kRank: l.kRank,
    vRank: l.vRank,
    error: l.error,
    edited: edited.has(l.layer),
    x: round2(x.start(i)),
    width: round2(x.bandwidth),
    bars: [bar(l, 'k', l.kRank), bar(l, 'v', l.vRank)],
    label: layerLabel(l, headDim, edited.has(l.layer), bytesPerRank),
  }));
  const stride = labelStride(layers.length);
  const xTicks = thinTicks(
    layers
      .filter((_, i) => i % stride === 0)
      .map((l) => {
        const i = layers.indexOf(l);
        return { value: l.layer, at: round2(x.start(i) + x.bandwidth / 2), label: String(l.layer) };
      }),
    X_TICK_GAP,
  );
  const yTicks = rankTicks(headDim).map((v) => ({ value: v, at: round2(y(v)), label: String(v) }));
  return { box, groups, xTicks, yTicks, inner };
}
