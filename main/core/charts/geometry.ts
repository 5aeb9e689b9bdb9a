/**
 * Scales and ticks for the charts the wizard draws and the HTML report prints (ARCHITECTURE.md §6): plain
 * arithmetic, no d3 and no DOM, so the engine (Node, no bundler) and the renderer compute the very same
 * coordinates.
 */

/** A chart's drawing area: the SVG viewBox and the margins the axes live in. */
export interface ChartBox {
  width: number;
  height: number;
  margin: { top: number; right: number; bottom: number; left: number };
}

export interface Tick {
  value: number;
  /** Position along the axis, in inner coordinates. */
  at: number;
  label: string;
}

export function innerSize(box: ChartBox): { width: number; height: number } {
  return {
    width: Math.max(1, box.width - box.margin.left - box.margin.right),
    height: Math.max(1, box.height - box.margin.top - box.margin.bottom),
  };
}

/** SVG coordinates to two decimals: far below a pixel, and the same text in the app and the report. */
export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

export function linearScale(domain: [number, number], range: [number, number]): (v: number) => number {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

/** A log scale clamped to its domain (values at or below the floor sit on it). */
export function logScale(domain: [number, number], range: [number, number]): (v: number) => number {
  const [l0, l1] = [Math.log10(domain[0]), Math.log10(domain[1])];
  const lin = linearScale([l0, l1], range);
  return (v) => lin(Math.min(l1, Math.max(l0, Math.log10(Math.max(v, domain[0])))));
}

/**
 * Labels of a log axis: 1e-4 below a thousandth, else the plain decimal (0.2, 0.05). The ticks are 1, 2 or
 * 5 times a power of ten, or a digit times one, so one significant digit is exact.
 */
export function logTickLabel(v: number): string {
  if (v < 1e-3) return v.toExponential(0);
  return String(Number(v.toPrecision(1)));
}

/** The smallest gap between neighbouring tick positions (Infinity for fewer than two). */
export function minTickGap(ticks: readonly Tick[]): number {
  let gap = Infinity;
  for (let i = 1; i < ticks.length; i++) gap = Math.min(gap, Math.abs(ticks[i].at - ticks[i - 1].at));
  return gap;
}

/** Keeps ticks in order, dropping any closer than `minGap` to the last one kept. */
export function thinTicks(ticks: readonly Tick[], minGap: number): Tick[] {
  const kept: Tick[] = [];
  for (const t of ticks)
    if (kept.length === 0 || Math.abs(t.at - kept[kept.length - 1].at) >= minGap) kept.push(t);
  return kept;
}

function candidates(lo: number, hi: number, mantissas: readonly number[], decadeStride = 1): number[] {
  const out: number[] = [];
  const first = Math.floor(Math.log10(lo));
  const last = Math.ceil(Math.log10(hi));
  for (let e = first; e <= last; e++) {
    if ((e - first) % decadeStride !== 0) continue;
    for (const m of mantissas) {
      // m·10^e written through the string form, so 0.2 is 0.2 and not 0.20000000000000004
      const v = Number(`${m}e${e}`);
      if (v >= lo * (1 - 1e-12) && v <= hi * (1 + 1e-12)) out.push(v);
    }
  }
  return out;
}

/**
 * Ticks of a log axis whose labels never collide: the densest of 1-2-5 per decade, whole decades, every
 * n-th decade, whose neighbours are at least `minGap` apart; on a domain narrower than that holds two
 * such values, the digits 1…9 thinned to `minGap`.
 */
export function logTicks(
  domain: [number, number],
  at: (v: number) => number,
  minGap: number,
  label: (v: number) => string = logTickLabel,
): Tick[] {
  const [lo, hi] = domain;
  const make = (vs: number[]) => vs.map((value) => ({ value, at: at(value), label: label(value) }));
  const decades = Math.ceil(Math.log10(hi)) - Math.floor(Math.log10(lo)) + 1;
  const sets: number[][] = [candidates(lo, hi, [1, 2, 5])];
  for (let stride = 1; stride <= decades; stride++) sets.push(candidates(lo, hi, [1], stride));
  for (const set of sets) {
    const ticks = make(set);
    if (ticks.length >= 2 && minTickGap(ticks) >= minGap) return ticks;
  }
  return thinTicks(make(candidates(lo, hi, [1, 2, 3, 4, 5, 6, 7, 8, 9])), minGap);
}

/**
 * d3's band layout (scaleBand with the given inner and outer padding, centred): the start and width of
 * each of `n` bands across `width`.
 */
export function bands(
  n: number,
  width: number,
  paddingInner: number,
  paddingOuter: number,
): { start: (i: number) => number; bandwidth: number } {
  const step = width / Math.max(1, n - paddingInner + 2 * paddingOuter);
  const start = (width - step * (n - paddingInner)) / 2;
  return { start: (i) => start + step * i, bandwidth: step * (1 - paddingInner) };
}

/**
 * The boxes both the wizard and the report draw in: one geometry, so a chart's coordinates (its path data)
 * are the same text in both; each scales its viewBox to the width it has.
 */
export const PROFILE_BOX: ChartBox = {
  width: 960,
  height: 380,
  margin: { top: 12, right: 16, bottom: 44, left: 72 },
};
export const ALLOCATION_BOX: ChartBox = {
  width: 960,
  height: 300,
  margin: { top: 14, right: 12, bottom: 44, left: 64 },
};
