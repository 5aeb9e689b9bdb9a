/**
 * The allocation chart's geometry: main/core/charts' allocationChart, the one the report prints too.
 */
import {
  allocationChart,
  type AllocationChartModel,
  type LayerRanks,
} from '../../main/core/charts/allocation.ts';
import type { ChartBox } from './box.ts';

export {
  labelStride,
  layerLabel,
  rankTicks,
  type Bar,
  type BarGroup,
  type LayerRanks,
} from '../../main/core/charts/allocation.ts';

export type AllocationLayout = AllocationChartModel;

export function allocationLayout(
  layers: readonly LayerRanks[],
  headDim: number,
  box: ChartBox,
  edited: ReadonlySet<number> = new Set(),
  bytesPerRank?: number,
): AllocationLayout {
  return allocationChart(layers, headDim, box, edited, bytesPerRank);
}
