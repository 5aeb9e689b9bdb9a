/**
 * The error-rank curves: for each layer, the layer-output error against how much of the layer's cache is
 * kept, along the layer's Pareto front (the grid points no other point beats on both size and error).
 * Errors span decades and reach 0 at full rank, so the y axis is logarithmic with a floor below the
 * smallest positive error; points under it are drawn on it.
 */
import type { ProfilePoint } from '../../main/contract/index.ts';
import { linearScale, logScale, round2 } from '../../main/core/charts/geometry.ts';
import {
  errorFloor as coreErrorFloor,
  pointTip,
  profileChart,
  type ProfileChart,
} from '../../main/core/charts/profile.ts';
import { keptFraction } from '../../main/core/memory.ts';
import { paretoFront as front } from '../../main/core/pareto.ts';
import type { LayerProfileView } from '../state/run.ts';
import type { ChartBox, Tick } from './box.ts';

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
  return coreErrorFloor(series);
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

/** The chart model the wizard draws: main/core/charts' profileChart, the one the report prints. */
export function profileChartOf(
  series: readonly ProfileSeries[],
  headDim: number,
  box: ChartBox,
  bytesPerRank?: number,
): ProfileChart {
  return profileChart({ curves: series, headDim, box, bytesPerRank });
}

export function profileLayout(series: readonly ProfileSeries[], box: ChartBox): ProfileLayout {
  const chart = profileChart({ curves: series, headDim: 1, box });
  const floor = chart.floor;
  let max = floor * 10;
  for (const s of series) for (const p of s.front) max = Math.max(max, p.error);
  const x = linearScale([0, 1], [0, chart.inner.width]);
  const y = logScale([floor, max * 1.2], [chart.inner.height, 0]);
  const position = (p: { kept: number; error: number }) => ({ x: round2(x(p.kept)), y: round2(y(p.error)) });
  return {
    inner: chart.inner,
    xTicks: chart.xTicks,
    yTicks: chart.yTicks,
    position,
    path: (front) =>
      front
        .map((p, i) => {
          const at = position(p);
          return `${i === 0 ? 'M' : 'L'}${at.x},${at.y}`;
        })
        .join(''),
  };
}

export function pointLabel(s: ProfileSeries, p: CurvePoint, headDim: number): string {
  return pointTip(s.layer, p, headDim, s.chosen === p);
}
