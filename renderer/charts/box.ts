/** A chart's drawing area and ticks: main/core/charts' own, shared with the report. */
export { innerSize, type ChartBox, type Tick } from '../../main/core/charts/geometry.ts';
