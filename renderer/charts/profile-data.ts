/**
 * The error-rank curves: for each layer, the layer-output error against how much of the layer's cache is
 * kept, along the layer's Pareto front (the grid points no other point beats on both size and error).
 * Errors span decades and reach 0 at full rank, so the y axis is logarithmic with a floor below the
 * smallest positive error; points under it are drawn on it.
 */
import { line, scaleLinear, scaleLog } from 'd3';
import type { ProfilePoint } from '../../main/contract/index.ts';
import { formatError } from '../../main/core/format.ts';
import { keptFraction } from '../../main/core/memory.ts';
import { paretoFront as front } from '../../main/core/pareto.ts';
import type { LayerProfileView } from '../state/run.ts';
import { innerSize, type ChartBox, type Tick } from './box.ts';

export interface CurvePoint extends ProfilePoint {
  /** Fraction of the layer's full cache kept: (kRank + vRank) / 2d. */
  kept: number;
}

export interface ProfileSeries {
  layer: number;
  keySpace: string;
  front: CurvePoint[];
  /** The allocation's point for this layer (on the grid, not necessarily on the front). */
  chosen: CurvePoint | null;
}

export { keptFraction };

/**
 * The layer's Pareto front (main/core/pareto.ts, the allocator's own, ties included), each point with the
 * share of the layer's cache it keeps; sorted by size kept.
 */
export function paretoFront(points: readonly ProfilePoint[], headDim: number): CurvePoint[] {
  return front(points).map((p) => ({ ...p, kept: keptFraction(p.kRank, p.vRank, headDim) }));
}

export function profileSeries(
  profiles: readonly (LayerProfileView | undefined)[],
  headDim: number,
  chosen: ReadonlyMap<number, { kRank: number; vRank: number }> = new Map(),
): ProfileSeries[] {
  const series: ProfileSeries[] = [];
  for (const p of profiles) {
    if (!p) continue;
    const pick = chosen.get(p.layer);
    const point = pick ? p.points.find((q) => q.kRank === pick.kRank && q.vRank === pick.vRank) : undefined;
    series.push({
      layer: p.layer,
      keySpace: p.keySpace,
      front: paretoFront(p.points, headDim),
      chosen: point ? { ...point, kept: keptFraction(point.kRank, point.vRank, headDim) } : null,
    });
  }
  return series;
}

/** Half the smallest positive error shown (or 1e-6 with none): where a log axis must stop. */
export function errorFloor(series: readonly ProfileSeries[]): number {
  let min = Infinity;
  for (const s of series) {
    for (const p of s.front) if (p.error > 0 && p.error < min) min = p.error;
    if (s.chosen && s.chosen.error > 0 && s.chosen.error < min) min = s.chosen.error;
  }
  return Number.isFinite(min) ? Math.max(min / 2, 1e-12) : 1e-6;
}

export interface ProfileLayout {
  inner: { width: number; height: number };
  xTicks: Tick[];
  yTicks: Tick[];
  /** Inner coordinates of a point. */
  position(p: { kept: number; error: number }): { x: number; y: number };
  /** SVG path of a layer's front. */
  path(front: readonly CurvePoint[]): string;
}

export function profileLayout(series: readonly ProfileSeries[], box: ChartBox): ProfileLayout {
  const inner = innerSize(box);
  const floor = errorFloor(series);
  let max = floor * 10;
  for (const s of series) for (const p of s.front) max = Math.max(max, p.error);
  const x = scaleLinear().domain([0, 1]).range([0, inner.width]);
  const y = scaleLog()
    .domain([floor, max * 1.2])
    .range([inner.height, 0])
    .clamp(true);
  const position = (p: { kept: number; error: number }) => ({ x: x(p.kept), y: y(Math.max(p.error, floor)) });
  const draw = line<CurvePoint>()
    .x((p) => position(p).x)
    .y((p) => position(p).y);
  const decades = y.ticks().filter((v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9);
  return {
    inner,
    xTicks: [0, 0.25, 0.5, 0.75, 1].map((v) => ({ value: v, at: x(v), label: `${v * 100} %` })),
    yTicks: (decades.length >= 2 ? decades : y.ticks(4)).map((v) => ({
      value: v,
      at: y(v),
      label: formatError(v),
    })),
    position,
    path: (front) => draw(front as CurvePoint[]) ?? '',
  };
}

export function pointLabel(s: ProfileSeries, p: CurvePoint, headDim: number): string {
  return (
    `Layer ${s.layer}${s.chosen === p ? ' (chosen)' : ''}: key rank ${p.kRank}, value rank ${p.vRank} ` +
    `of ${headDim}, ${Math.round(p.kept * 100)} % of the layer’s cache kept, error ${formatError(p.error)}`
  );
}
