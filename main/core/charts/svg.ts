/**
 * The charts as standalone SVG text, for the HTML report: it has no scripts, so every number a reader may
 * want sits in an SVG <title> (the browser's own tooltip). The geometry is profile.ts's and allocation.ts's,
 * the same the wizard draws.
 */
import type { AllocationChartModel } from './allocation.ts';
import type { ProfileChart } from './profile.ts';

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const esc = (v: unknown) => escapeXml(String(v));

function open(id: string, title: string, width: number, height: number): string[] {
  // width 100 % and a viewBox: the chart spans the page and keeps its proportions
  return [
    `<svg id="${esc(id)}" role="img" aria-labelledby="${esc(id)}-title" width="100%" viewBox="0 0 ${width} ${height}" preserveAspectRatio="xMidYMid meet">`,
    `<title id="${esc(id)}-title">${esc(title)}</title>`,
  ];
}

function axes(
  inner: { width: number; height: number },
  xTicks: readonly { at: number; label: string }[],
  yTicks: readonly { at: number; label: string }[],
  xLabel: string,
  yLabel: string,
  left: number,
): string[] {
  const out: string[] = [];
  for (const t of yTicks) {
    out.push(
      `<line class="grid" x1="0" x2="${inner.width}" y1="${t.at}" y2="${t.at}"/>`,
      `<text class="tick y" x="-6" y="${t.at}" text-anchor="end" dominant-baseline="middle">${esc(t.label)}</text>`,
    );
  }
  for (const t of xTicks) {
    out.push(
      `<line class="axis" x1="${t.at}" x2="${t.at}" y1="${inner.height}" y2="${inner.height + 4}"/>`,
      `<text class="tick x" x="${t.at}" y="${inner.height + 16}" text-anchor="middle">${esc(t.label)}</text>`,
    );
  }
  out.push(
    `<line class="axis" x1="0" x2="${inner.width}" y1="${inner.height}" y2="${inner.height}"/>`,
    `<line class="axis" x1="0" x2="0" y1="0" y2="${inner.height}"/>`,
    `<text class="label" x="${inner.width / 2}" y="${inner.height + 34}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text class="label" transform="translate(${-left + 14},${inner.height / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  return out;
}

export function profileChartSvg(chart: ProfileChart, id: string, title: string): string {
  const { box, inner } = chart;
  const parts = open(id, title, box.width, box.height);
  parts.push(`<g transform="translate(${box.margin.left},${box.margin.top})">`);
  parts.push(...axes(inner, chart.xTicks, chart.yTicks, chart.xLabel, chart.yLabel, box.margin.left));
  for (const c of chart.curves) {
    const dash = c.dash ? ` stroke-dasharray="${c.dash}"` : '';
    const dots = c.points
      .map(
        (p) =>
          `<circle class="point" cx="${p.x}" cy="${p.y}" r="3" fill="${c.colour}"><title>${esc(p.tip)}</title></circle>`,
      )
      .join('');
    parts.push(
      `<g class="curve" data-layer="${c.layer}"><path d="${c.d}" fill="none" stroke="${c.colour}" stroke-width="1.5"${dash}><title>${esc(c.name)}</title></path>${dots}</g>`,
    );
  }
  for (const c of chart.curves) {
    const p = c.chosen;
    if (!p) continue;
    parts.push(
      `<circle class="chosen" data-layer="${c.layer}" data-k-rank="${p.kRank}" data-v-rank="${p.vRank}" cx="${p.x}" cy="${p.y}" r="5" fill="${c.colour}"><title>${esc(p.tip)}</title></circle>`,
    );
  }
  parts.push('</g>', '</svg>');
  return parts.join('\n');
}

export function allocationChartSvg(
  chart: AllocationChartModel,
  id: string,
  title: string,
  labels: { x: string; y: string },
): string {
  const { box, inner } = chart;
  const parts = open(id, title, box.width, box.height);
  parts.push(`<g transform="translate(${box.margin.left},${box.margin.top})">`);
  parts.push(...axes(inner, chart.xTicks, chart.yTicks, labels.x, labels.y, box.margin.left));
  for (const g of chart.groups) {
    const bars = g.bars
      .map(
        (b) =>
          `<rect class="bar ${b.side}" data-rank="${b.rank}" x="${b.x}" y="${b.y}" width="${b.width}" height="${b.height}"><title>${esc(g.label)}</title></rect>`,
      )
      .join('');
    parts.push(`<g class="layer" data-layer="${g.layer}" transform="translate(${g.x},0)">${bars}</g>`);
  }
  parts.push('</g>', '</svg>');
  return parts.join('\n');
}
