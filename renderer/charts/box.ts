/** A chart's drawing area: the SVG viewBox and the margins the axes live in. */
export interface ChartBox {
  width: number;
  height: number;
  margin: { top: number; right: number; bottom: number; left: number };
}

export function innerSize(box: ChartBox): { width: number; height: number } {
  return {
    width: Math.max(1, box.width - box.margin.left - box.margin.right),
    height: Math.max(1, box.height - box.margin.top - box.margin.bottom),
  };
}

export interface Tick {
  value: number;
  /** Position along the axis, in inner coordinates. */
  at: number;
  label: string;
}
