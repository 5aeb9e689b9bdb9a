/**
 * The allocation chart's geometry: per layer a group of two bars, the key rank and the value rank per
 * head, against the head dimension (a bar at full height keeps that side uncompressed).
 */
import { scaleBand, scaleLinear } from 'd3';
import { formatError } from '../../main/core/format.ts';
import { rankGrid } from '../../main/core/memory.ts';
import { innerSize, type ChartBox, type Tick } from './box.ts';

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
  label: string;
}

export interface AllocationLayout {
  groups: BarGroup[];
  xTicks: Tick[];
  yTicks: Tick[];
  inner: { width: number; height: number };
}

export function layerLabel(l: LayerRanks, headDim: number, edited: boolean): string {
  return (
    `Layer ${l.layer}: key rank ${l.kRank}, value rank ${l.vRank} of ${headDim} per head; ` +
    `layer output error ${formatError(l.error)}${edited ? '; set by hand' : ''}`
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

export function allocationLayout(
  layers: readonly LayerRanks[],
  headDim: number,
  box: ChartBox,
  edited: ReadonlySet<number> = new Set(),
): AllocationLayout {
  const inner = innerSize(box);
  const x = scaleBand<number>()
    .domain(layers.map((l) => l.layer))
    .range([0, inner.width])
    .paddingInner(0.25)
    .paddingOuter(0.1);
  const side = scaleBand<'k' | 'v'>().domain(['k', 'v']).range([0, x.bandwidth()]).paddingInner(0.08);
  const y = scaleLinear()
    .domain([0, Math.max(1, headDim)])
    .range([inner.height, 0]);

  const bar = (s: 'k' | 'v', rank: number): Bar => ({
    side: s,
    rank,
    x: side(s) ?? 0,
    y: y(rank),
    width: side.bandwidth(),
    height: inner.height - y(rank),
  });
  const groups = layers.map((l): BarGroup => ({
    layer: l.layer,
    kRank: l.kRank,
    vRank: l.vRank,
    error: l.error,
    edited: edited.has(l.layer),
    x: x(l.layer) ?? 0,
    width: x.bandwidth(),
    bars: [bar('k', l.kRank), bar('v', l.vRank)],
    label: layerLabel(l, headDim, edited.has(l.layer)),
  }));
  const stride = labelStride(layers.length);
  const xTicks = layers
    .filter((_, i) => i % stride === 0)
    .map((l) => ({ value: l.layer, at: (x(l.layer) ?? 0) + x.bandwidth() / 2, label: String(l.layer) }));
  const yTicks = rankTicks(headDim).map((v) => ({ value: v, at: y(v), label: String(v) }));
  return { groups, xTicks, yTicks, inner };
}
