/**
 * The error-rank chart, one curve per layer: a layer's output error against the share of its cache kept,
 * along its Pareto front (main/core/pareto.ts), with the allocation's point marked. Errors span decades and
 * reach 0 at full rank, so the error axis is logarithmic with a floor under the smallest positive error;
 * points under it sit on it. The wizard draws this model with React and the report prints it as SVG text:
 * same curves, axes, colours and tooltips.
 */
import { formatBytes, formatError } from '../format.ts';
import { keptFraction } from '../memory.ts';
import type { RankPoint } from '../pareto.ts';
import { innerSize, linearScale, logScale, logTicks, round2, type ChartBox, type Tick } from './geometry.ts';
import { seriesStyle } from './palette.ts';

export interface ProfileCurveInput {
  layer: number;
  /** The layer's Pareto front, cheapest first. */
  front: readonly RankPoint[];
  /** The allocation's point for this layer (on the grid, not necessarily on the front). */
  chosen: RankPoint | null;
}

export interface ProfileChartInput {
  curves: readonly ProfileCurveInput[];
  headDim: number;
  box: ChartBox;
  /** Cache bytes per token of one rank of one side of a layer (H_kv · bytes per element), for the tooltips. */
  bytesPerRank?: number;
}

export interface ChartPoint extends RankPoint {
  /** Share of the layer's cache kept: (kRank + vRank) / 2d. */
  kept: number;
  /** Inner coordinates, rounded to two decimals. */
  x: number;
  y: number;
  /** The numbers of the point, for a tooltip or an SVG <title>. */
  tip: string;
}

export interface ProfileCurve {
  layer: number;
  name: string;
  colour: string;
  dash: string;
  /** SVG path data of the front. */
  d: string;
  points: ChartPoint[];
  chosen: ChartPoint | null;
}

export interface ProfileChart {
  box: ChartBox;
  inner: { width: number; height: number };
  floor: number;
  xTicks: Tick[];
  yTicks: Tick[];
  xLabel: string;
  yLabel: string;
  curves: ProfileCurve[];
}

/** Vertical room of an axis label (11 px text): neighbouring log ticks are never closer. */
export const Y_TICK_GAP = 16;

/** Half the smallest positive error (or 1e-6 with none): where the log axis must stop. */
export function errorFloor(curves: readonly ProfileCurveInput[]): number {
  let min = Infinity;
  for (const c of curves) {
    for (const p of c.front) if (p.error > 0 && p.error < min) min = p.error;
    if (c.chosen && c.chosen.error > 0 && c.chosen.error < min) min = c.chosen.error;
  }
  return Number.isFinite(min) ? Math.max(min / 2, 1e-12) : 1e-6;
}

export function pointTip(
  layer: number,
  p: RankPoint,
  headDim: number,
  chosen: boolean,
  bytesPerRank?: number,
): string {
  const kept = keptFraction(p.kRank, p.vRank, headDim);
  const bytes =
    bytesPerRank !== undefined && bytesPerRank > 0
      ? `, ${formatBytes((p.kRank + p.vRank) * bytesPerRank)} per token`
      : '';
  return (
    `Layer ${layer}${chosen ? ' (chosen)' : ''}: key rank ${p.kRank}, value rank ${p.vRank} of ${headDim}, ` +
    `${Math.round(kept * 100)} % of the layer’s cache kept${bytes}, error ${formatError(p.error)}`
  );
}

export function profileChart(input: ProfileChartInput): ProfileChart {
  const { curves, headDim, box, bytesPerRank } = input;
  const inner = innerSize(box);
  const floor = errorFloor(curves);
  let max = floor * 10;
  for (const c of curves) for (const p of c.front) max = Math.max(max, p.error);
  const domain: [number, number] = [floor, max * 1.2];
  const x = linearScale([0, 1], [0, inner.width]);
  const y = logScale(domain, [inner.height, 0]);
  const point = (layer: number, p: RankPoint, chosen: boolean): ChartPoint => {
    const kept = keptFraction(p.kRank, p.vRank, headDim);
    return {
      kRank: p.kRank,
      vRank: p.vRank,
      error: p.error,
      kept,
      x: round2(x(kept)),
      y: round2(y(p.error)),
      tip: pointTip(layer, p, headDim, chosen, bytesPerRank),
    };
  };
  return {
    box,
    inner,
    floor,
    xTicks: [0, 0.25, 0.5, 0.75, 1].map((v) => ({ value: v, at: round2(x(v)), label: `${v * 100} %` })),
    yTicks: logTicks(domain, (v) => round2(y(v)), Y_TICK_GAP),
    xLabel: 'Layer cache kept (% of its full size)',
    yLabel: 'Layer output error (relative, log)',
    curves: curves.map((c) => {
      const points = c.front.map((p) => point(c.layer, p, false));
      return {
        layer: c.layer,
        name: `Layer ${c.layer}`,
        ...seriesStyle(c.layer),
        d: points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x},${p.y}`).join(''),
        points,
        chosen: c.chosen ? point(c.layer, c.chosen, true) : null,
      };
    }),
  };
}
