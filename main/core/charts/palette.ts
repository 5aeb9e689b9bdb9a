/**
 * Per-layer colours: the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies),
 * without its black and yellow, which vanish on a dark or a light page. Past its seven colours the dash
 * pattern changes, so layers 0 and 7 differ by their stroke, not only by name.
 */
export const LAYER_COLOURS = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#999933'];

/** SVG stroke-dasharray values; '' is a solid line. */
export const LAYER_DASHES = ['', '6 3', '2 2', '8 3 2 3'];

export interface SeriesStyle {
  colour: string;
  dash: string;
}

/** The style of the `index`-th series (a layer's index): colour first, then dash pattern. */
export function seriesStyle(index: number): SeriesStyle {
  const n = LAYER_COLOURS.length;
  const i = Math.max(0, Math.floor(index));
  return { colour: LAYER_COLOURS[i % n], dash: LAYER_DASHES[Math.floor(i / n) % LAYER_DASHES.length] };
}
