/**
 * The HTML form of `rankwise-report.json`: one self-contained file (inline CSS and SVG, no scripts, no
 * external resources) so it can be mailed, attached to an issue or opened offline and still show
 * everything. It renders the ReportData object and nothing else, so it never disagrees with the JSON.
 */
import { paretoFront } from '../allocate/index.ts';
import type { ProfilePoint } from '../allocate/index.ts';
import { formatBytes } from '../core/format.ts';
import type { CompressReport, ReportData } from '../contract/report.ts';

/** Makes any string safe as HTML text and inside a double- or single-quoted attribute. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const esc = (value: unknown) => escapeHtml(String(value));

// The JSON may carry null where a number went NaN or Infinity (JSON.stringify writes those as null), so
// every number formatter tolerates anything.
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** 1234567 → "1,234,567"; locale-independent so the report reads the same wherever it is rendered. */
export function formatInt(n: number): string {
  if (!isNum(n)) return '—';
  const sign = n < 0 ? '-' : '';
  return sign + String(Math.round(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

const bytes = (n: number) => (isNum(n) ? formatBytes(n) : '—');
const fixed = (x: number, digits: number) => (isNum(x) ? x.toFixed(digits) : '—');

/** Relative errors span decades (1e-7 at full rank, 0.3 at rank 1): switch to exponent form when small. */
export function formatError(x: number): string {
  if (!isNum(x)) return '—';
  if (x === 0) return '0';
  return Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toFixed(4);
}

function formatChange(before: number, after: number): string {
  if (!isNum(before) || !isNum(after) || before === 0) return '—';
  const pct = ((after - before) / before) * 100;
  return `${pct >= 0 ? '+' : '−'}${Math.abs(pct).toFixed(1)} %`;
}

/** SVG coordinates: two decimals are well below a pixel and keep the document small. */
const px = (x: number) => String(Math.round(x * 100) / 100);

function baseName(dir: string): string {
  const parts = dir.split(/[\\/]+/).filter((p) => p.length > 0);
  return parts.length > 0 ? parts[parts.length - 1] : dir;
}

/** Layer colour: a blue → orange ramp, so depth reads as colour and a legend needs only its two ends. */
function layerColour(index: number, count: number): string {
  const t = count > 1 ? index / (count - 1) : 0;
  return `hsl(${Math.round(215 - 185 * t)} 70% 50%)`;
}

const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1b1f24; --muted: #5b6470; --line: #d5dae0; --panel: #f5f7f9;
  --k: #2f6fd6; --v: #d9822b; --ok: #1a7f37; --bad: #c62828; --grid: #e6e9ed;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #15181c; --fg: #e4e7eb; --muted: #9aa3ad; --line: #353b43; --panel: #1e2227;
    --k: #6ea2ff; --v: #f0a55a; --ok: #4cc36a; --bad: #ff6b6b; --grid: #2a3037;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p, .note { color: var(--muted); }
.note { font-size: 0.9em; margin: 6px 0; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
.meta { display: flex; flex-wrap: wrap; gap: 4px 20px; color: var(--muted); margin: 0; }
.meta dt { display: inline; font-weight: 600; }
.meta dd { display: inline; margin: 0 0 0 4px; color: var(--fg); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card h3 { margin: 0 0 4px; font-size: 0.85em; text-transform: uppercase; letter-spacing: 0.04em;
  color: var(--muted); }
.card .big { font-size: 1.35em; font-weight: 600; }
.ok { color: var(--ok); } .bad { color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid var(--line); }
td.num, th.num { text-align: right; }
thead th { color: var(--muted); font-weight: 600; }
figure { margin: 8px 0; overflow-x: auto; }
svg { max-width: 100%; height: auto; display: block; }
svg text { fill: var(--muted); font: 11px system-ui, sans-serif; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .grid { stroke: var(--grid); stroke-width: 1; }
svg .full { stroke: var(--muted); stroke-dasharray: 4 3; }
svg .bar.k { fill: var(--k); } svg .bar.v { fill: var(--v); }
svg .curve polyline { fill: none; stroke-width: 1.5; }
svg .chosen { stroke: var(--fg); stroke-width: 1.5; }
.legend { display: flex; gap: 16px; align-items: center; color: var(--muted); font-size: 0.9em; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 4px;
  vertical-align: -1px; }
.legend i.ramp { width: 80px; margin: 0 -8px; }
.legend i.k { background: var(--k); } .legend i.v { background: var(--v); }
`;

function section(id: string, title: string, body: string): string {
  return `<section id="${id}">\n<h2>${esc(title)}</h2>\n${body}\n</section>`;
}

function renderHeader(r: ReportData): string {
  const c = r.compress;
  const info = r.model.info;
  return `<header>
<h1>Rankwise report — ${esc(baseName(r.model.dir))}</h1>
<dl class="meta">
<div><dt>Model</dt><dd><code>${esc(r.model.dir)}</code> (${esc(info.modelType)}, ${esc(info.layers)} layers, ${esc(info.kvHeads)} KV heads × d = ${esc(info.headDim)}, ${esc(info.dtype)})</dd></div>
<div><dt>Method</dt><dd>${esc(c.method)}</dd></div>
<div><dt>Key space</dt><dd>${esc(c.keySpace)}</dd></div>
<div><dt>Created</dt><dd><time datetime="${esc(r.created)}">${esc(r.created)}</time></dd></div>
</dl>
</header>`;
}

function renderSummary(r: ReportData): string {
  const c = r.compress;
  const kv = r.memory.kvBytesPerToken;
  const v = r.export.verification;
  const kept = isNum(kv.original) && kv.original > 0 ? kv.compressed / kv.original : c.kvFraction;
  const status = v.passed ? '<span class="ok">passed</span>' : '<span class="bad">FAILED</span>';
  return section(
    'summary',
    'Summary',
    `<div class="cards">
<div class="card"><h3>Perplexity</h3>
<div class="big">${fixed(c.perplexity.original, 3)} → ${fixed(c.perplexity.compressed, 3)}</div>
<div class="note">${formatChange(c.perplexity.original, c.perplexity.compressed)} on ${formatInt(c.evalWindows)} evaluation windows of ${formatInt(c.window)} tokens</div></div>
<div class="card"><h3>KV cache per token</h3>
<div class="big">${bytes(kv.original)} → ${bytes(kv.compressed)}</div>
<div class="note">${fixed(kept * 100, 1)} % kept (${formatInt(kv.original)} → ${formatInt(kv.compressed)} bytes)</div></div>
<div class="card"><h3>Verification</h3>
<div class="big">${status}</div>
<div class="note">checkpoint error ${formatError(v.checkpointRelError)}, ONNX error ${formatError(v.onnxRelError)} (tolerance ${formatError(v.tolerance)})</div></div>
</div>
<table>
<tbody>
<tr><th>Verification windows</th><td class="num">${formatInt(v.windows)}</td></tr>
<tr><th>Reloaded checkpoint vs in-memory model, max |Δlogit| / max |logit|</th><td class="num">${formatError(v.checkpointRelError)}</td></tr>
<tr><th>ONNX decoder with KV cache (${formatInt(v.onnxPrefillTokens)} prefill tokens, ${formatInt(v.onnxDecodeSteps)} decode steps)</th><td class="num">${formatError(v.onnxRelError)}</td></tr>
<tr><th>Perplexity, reloaded / in memory</th><td class="num">${fixed(v.perplexity.reloaded, 3)} / ${fixed(v.perplexity.inMemory, 3)}</td></tr>
<tr><th>ONNX <code>present</code> bytes, measured / predicted</th><td class="num">${formatInt(v.presentBytes.measured)} / ${formatInt(v.presentBytes.predicted)}</td></tr>
</tbody>
</table>`,
  );
}

// Allocation chart geometry (SVG user units).
const BAR_W = 9;
const BAR_GAP = 2;
const GROUP_GAP = 10;
const GROUP_W = 2 * BAR_W + BAR_GAP + GROUP_GAP;
const ALLOC_PLOT_H = 200;
const ALLOC_LEFT = 64;
const ALLOC_TOP = 14;
const ALLOC_BOTTOM = 48;

/**
 * Every n-th layer gets an x label. A deep model's chart is scaled down to the page width, which shrinks
 * its text too, so past 40 layers about 20 labels stay legible where 80 would not.
 */
function labelStride(count: number): number {
  return count <= 40 ? 1 : Math.ceil(count / 20);
}

function renderAllocationChart(c: CompressReport, d: number): string {
  const layers = c.layers;
  const plotW = Math.max(layers.length * GROUP_W, 120);
  const width = ALLOC_LEFT + plotW + 16;
  const height = ALLOC_TOP + ALLOC_PLOT_H + ALLOC_BOTTOM;
  const base = ALLOC_TOP + ALLOC_PLOT_H;
  const yOf = (rank: number) => base - (rank / d) * ALLOC_PLOT_H;
  const parts: string[] = [];
  parts.push(
    `<svg id="allocation-chart" role="img" aria-labelledby="allocation-chart-title" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title id="allocation-chart-title">Per-head K and V ranks per layer, out of d = ${esc(d)}</title>`,
  );
  for (const q of [0, 0.25, 0.5, 0.75, 1]) {
    const y = px(yOf(q * d));
    parts.push(
      `<line class="${q === 1 ? 'full' : 'grid'}" x1="${ALLOC_LEFT}" x2="${ALLOC_LEFT + plotW}" y1="${y}" y2="${y}"/>`,
      `<text x="${ALLOC_LEFT - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(px(q * d))}</text>`,
    );
  }
  const stride = labelStride(layers.length);
  layers.forEach((l, i) => {
    const x0 = ALLOC_LEFT + i * GROUP_W + GROUP_GAP / 2;
    const bar = (kind: 'k' | 'v', rank: number, x: number) => {
      const h = (rank / d) * ALLOC_PLOT_H;
      const label = `layer ${l.layer}: ${kind.toUpperCase()} rank ${rank} of ${d} per head (${fixed((rank / d) * 100, 1)} %)`;
      return `<rect class="bar ${kind}" data-rank="${esc(rank)}" x="${px(x)}" y="${px(base - h)}" width="${BAR_W}" height="${px(h)}"><title>${esc(label)}</title></rect>`;
    };
    const tick =
      i % stride === 0
        ? `<text x="${px(x0 + BAR_W + BAR_GAP / 2)}" y="${base + 14}" text-anchor="middle">${esc(l.layer)}</text>`
        : '';
    parts.push(
      `<g class="layer" data-layer="${esc(l.layer)}">${bar('k', l.kRank, x0)}${bar('v', l.vRank, x0 + BAR_W + BAR_GAP)}${tick}</g>`,
    );
  });
  parts.push(
    `<line class="axis" x1="${ALLOC_LEFT}" x2="${ALLOC_LEFT + plotW}" y1="${base}" y2="${base}"/>`,
    `<line class="axis" x1="${ALLOC_LEFT}" x2="${ALLOC_LEFT}" y1="${ALLOC_TOP}" y2="${base}"/>`,
    `<text x="${px(ALLOC_LEFT + plotW / 2)}" y="${height - 8}" text-anchor="middle">layer</text>`,
    `<text transform="translate(16 ${px(ALLOC_TOP + ALLOC_PLOT_H / 2)}) rotate(-90)" text-anchor="middle">rank per KV head (elements, of d = ${esc(d)})</text>`,
    '</svg>',
  );
  const alloc = c.allocation;
  const how = alloc
    ? `Allocated by ${esc(alloc.kind)} with target ${esc(alloc.target)}: ${alloc.feasible ? 'feasible' : '<span class="bad">infeasible</span>'}${alloc.reason ? ` (${esc(alloc.reason)})` : ''}, weighted mean error ${formatError(alloc.weightedError)}.`
    : c.profile
      ? 'Ranks chosen per layer from the measured profiles.'
      : 'Fixed ranks: every layer got the same ranks.';
  return section(
    'allocation',
    'Rank allocation',
    `<div class="legend"><span><i class="k"></i>K rank</span><span><i class="v"></i>V rank</span><span>dashed line: full rank d = ${esc(d)}</span></div>
<figure>${parts.join('\n')}</figure>
<p class="note">${how} Bar height is the per-head rank out of the head dimension d; hover a bar for its value.</p>`,
  );
}

// Error-rank curve geometry.
const CURVE_W = 640;
const CURVE_H = 320;
const CURVE_LEFT = 72;
const CURVE_RIGHT = 20;
const CURVE_TOP = 16;
const CURVE_BOTTOM = 48;

interface YScale {
  log: boolean;
  map: (error: number) => number;
  ticks: number[];
}

/** Above this max/min ratio of the positive errors the y axis goes logarithmic. */
const LOG_RATIO = 100;

/** Axis labels: 1e-4, 0.001, 0.125 (three significant digits, no trailing zeros). */
function formatTick(x: number): string {
  if (x === 0) return '0';
  return Math.abs(x) < 1e-3 ? x.toExponential(0) : String(Number(x.toPrecision(3)));
}

function niceCeil(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function errorScale(errors: number[], top: number, bottom: number): YScale {
  const positive = errors.filter((e) => isNum(e) && e > 0);
  const hi = positive.length > 0 ? Math.max(...positive) : 1;
  const lo = positive.length > 0 ? Math.min(...positive) : 1;
  if (hi / lo >= LOG_RATIO) {
    const d0 = Math.floor(Math.log10(lo));
    const d1 = Math.max(Math.ceil(Math.log10(hi)), d0 + 1);
    const ticks: number[] = [];
    const step = Math.max(1, Math.ceil((d1 - d0) / 8));
    for (let e = d0; e <= d1; e += step) ticks.push(10 ** e);
    // An error of exactly 0 has no logarithm: it is drawn on the bottom edge.
    const map = (err: number) => {
      const t = err > 0 ? (Math.log10(err) - d0) / (d1 - d0) : 0;
      return bottom - Math.min(1, Math.max(0, t)) * (bottom - top);
    };
    return { log: true, map, ticks };
  }
  const max = niceCeil(hi);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((q) => q * max);
  const map = (err: number) => bottom - (Math.max(0, err) / max) * (bottom - top);
  return { log: false, map, ticks };
}

function renderCurves(c: CompressReport, d: number): string {
  const profile = c.profile;
  if (!profile || profile.every((p) => p.length === 0)) {
    return section(
      'curves',
      'Error-rank curves',
      '<p>No error-rank profile was measured: the ranks were fixed, so each layer was measured at its one setting only (see the per-layer table).</p>',
    );
  }
  const fronts = profile.map((points) =>
    paretoFront(points.map((p): ProfilePoint => ({ kRank: p.kRank, vRank: p.vRank, error: p.error }))),
  );
  const chosen = profile.map((points, i) => (points.length > 0 ? c.layers[i] : undefined));
  const errors = [
    ...fronts.flatMap((f) => f.map((p) => p.error)),
    ...chosen.flatMap((l) => (l ? [l.error] : [])),
  ];
  const left = CURVE_LEFT;
  const right = CURVE_W - CURVE_RIGHT;
  const top = CURVE_TOP;
  const bottom = CURVE_H - CURVE_BOTTOM;
  const xMax = 2 * d;
  const xOf = (cost: number) => left + (cost / xMax) * (right - left);
  const y = errorScale(errors, top, bottom);
  const parts: string[] = [];
  parts.push(
    `<svg id="curves-chart" role="img" aria-labelledby="curves-chart-title" width="${CURVE_W}" height="${CURVE_H}" viewBox="0 0 ${CURVE_W} ${CURVE_H}">`,
    `<title id="curves-chart-title">Pareto front of relative layer-output error against cache elements per token per KV head, one line per layer</title>`,
  );
  for (const t of y.ticks) {
    const ty = px(y.map(t));
    parts.push(
      `<line class="grid" x1="${left}" x2="${right}" y1="${ty}" y2="${ty}"/>`,
      `<text x="${left - 6}" y="${ty}" text-anchor="end" dominant-baseline="middle">${esc(formatTick(t))}</text>`,
    );
  }
  for (const q of [0, 0.25, 0.5, 0.75, 1]) {
    const tx = px(xOf(q * xMax));
    parts.push(
      `<line class="grid" x1="${tx}" x2="${tx}" y1="${top}" y2="${bottom}"/>`,
      `<text x="${tx}" y="${bottom + 14}" text-anchor="middle">${esc(px(q * xMax))}</text>`,
    );
  }
  const count = profile.length;
  fronts.forEach((front, i) => {
    if (front.length === 0) return;
    const layer = c.layers[i]?.layer ?? i;
    const colour = layerColour(i, count);
    const pts = front.map((p) => `${px(xOf(p.kRank + p.vRank))},${px(y.map(p.error))}`).join(' ');
    parts.push(
      `<g class="curve" data-layer="${esc(layer)}"><polyline stroke="${colour}" points="${pts}"><title>${esc(`layer ${layer}: ${front.length} Pareto points`)}</title></polyline></g>`,
    );
  });
  chosen.forEach((l, i) => {
    if (!l) return;
    const cost = l.kRank + l.vRank;
    const label = `layer ${l.layer}: chosen K ${l.kRank} + V ${l.vRank} = ${cost} elements, error ${formatError(l.error)}`;
    parts.push(
      `<circle class="chosen" data-layer="${esc(l.layer)}" data-k-rank="${esc(l.kRank)}" data-v-rank="${esc(l.vRank)}" cx="${px(xOf(cost))}" cy="${px(y.map(l.error))}" r="4" fill="${layerColour(i, count)}"><title>${esc(label)}</title></circle>`,
    );
  });
  parts.push(
    `<line class="axis" x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}"/>`,
    `<line class="axis" x1="${left}" x2="${left}" y1="${top}" y2="${bottom}"/>`,
    `<text x="${px((left + right) / 2)}" y="${CURVE_H - 10}" text-anchor="middle">cache elements per token per KV head (k_rank + v_rank, of 2d = ${esc(xMax)})</text>`,
    `<text transform="translate(14 ${px((top + bottom) / 2)}) rotate(-90)" text-anchor="middle">relative layer-output error${y.log ? ' (log scale)' : ''}</text>`,
    '</svg>',
  );
  return section(
    'curves',
    'Error-rank curves',
    `<div class="legend"><span>layer ${esc(c.layers[0]?.layer ?? 0)}</span><i class="ramp" style="background: linear-gradient(90deg, ${layerColour(0, 2)}, ${layerColour(1, 2)})"></i><span>layer ${esc(c.layers[count - 1]?.layer ?? count - 1)}</span><span>● chosen ranks</span></div>
<figure>${parts.join('\n')}</figure>
<p class="note">For each layer, the measured (k_rank, v_rank) points that no other point beats on both cache size and error; circles mark the ranks each layer got.${y.log ? ' Errors of exactly 0 sit on the bottom edge.' : ''} Hover a line or a circle for its layer.</p>`,
  );
}

function renderMemory(r: ReportData): string {
  const m = r.memory;
  const row = (label: string, before: number, after: number, change = formatChange(before, after)) =>
    `<tr><th>${label}</th><td class="num">${bytes(before)}</td><td class="num">${bytes(after)}</td><td class="num">${change}</td></tr>`;
  const rows = [
    row('KV cache per token', m.kvBytesPerToken.original, m.kvBytesPerToken.compressed),
    ...m.perSequence.map((s) =>
      row(
        `KV cache of one sequence of ${formatInt(s.tokens)} tokens`,
        s.kvBytesOriginal,
        s.kvBytesCompressed,
      ),
    ),
    row('Weights', m.weightsBytes.original, m.weightsBytes.compressed),
    row(
      `Weights + KV cache of ${formatInt(m.totals.batch)} × ${formatInt(m.totals.contextTokens)} tokens`,
      m.totals.original,
      m.totals.compressed,
    ),
  ];
  const cc = m.concurrency;
  const more = cc.sequencesCompressed - cc.sequencesOriginal;
  const ratio =
    cc.sequencesOriginal > 0 ? ` (×${fixed(cc.sequencesCompressed / cc.sequencesOriginal, 2)})` : '';
  const moreText = isNum(more) ? `${more >= 0 ? '+' : '−'}${formatInt(Math.abs(more))}${ratio}` : '—';
  return section(
    'memory',
    'Memory',
    `<table>
<thead><tr><th></th><th class="num">Original</th><th class="num">Compressed</th><th class="num">Change</th></tr></thead>
<tbody>
${rows.join('\n')}
<tr><th>Sequences of ${formatInt(cc.contextTokens)} tokens that fit in ${bytes(cc.memoryBytes)}</th><td class="num">${formatInt(cc.sequencesOriginal)}</td><td class="num">${formatInt(cc.sequencesCompressed)}</td><td class="num">${moreText}</td></tr>
</tbody>
</table>
<p class="note">Bytes at the checkpoint's dtype (1 KiB = 1024 bytes). Sequences that fit = ⌊(memory − weights) / (tokens × KV bytes per token)⌋, 0 when the weights alone do not fit; activations and runtime overhead are not counted.</p>`,
  );
}

function renderLayers(c: CompressReport): string {
  const rows = c.layers.map(
    (l) =>
      `<tr><td class="num">${esc(l.layer)}</td><td>${esc(l.keySpace)}</td><td class="num">${esc(l.kRank)}</td><td class="num">${esc(l.vRank)}</td><td class="num">${formatError(l.error)}</td></tr>`,
  );
  return section(
    'layers',
    'Per-layer ranks',
    `<table>
<thead><tr><th class="num">Layer</th><th>Key space</th><th class="num">k_rank</th><th class="num">v_rank</th><th class="num">Error</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
<p class="note">Ranks are per KV head; error is the relative decoder-layer output error on the held-out calibration windows.</p>`,
  );
}

function secondsRows(stage: string, seconds: Record<string, number>): string[] {
  return Object.entries(seconds).map(
    ([name, s]) =>
      `<tr><td>${esc(stage)}</td><td>${esc(name)}</td><td class="num">${fixed(s, s < 10 ? 2 : 1)}</td></tr>`,
  );
}

function renderSettings(r: ReportData): string {
  const c = r.compress;
  const items: [string, string][] = [
    ['Window', `${formatInt(c.window)} tokens`],
    ['Calibration windows (fit / held out)', `${formatInt(c.calibWindows)} / ${formatInt(c.heldoutWindows)}`],
    ['Evaluation windows', formatInt(c.evalWindows)],
    ['Device', esc(c.device)],
  ];
  if (c.training) {
    items.push([
      'Training',
      `${formatInt(c.training.steps)} steps in ${fixed(c.training.seconds, 1)} s (${fixed(c.training.secondsPerLayerStep * 1000, 1)} ms per layer step)`,
    ]);
  }
  const settings = items.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('\n');
  const timing = [...secondsRows('compress', c.seconds), ...secondsRows('export', r.export.seconds)];
  const total = [...Object.values(c.seconds), ...Object.values(r.export.seconds)].reduce(
    (a, b) => a + (isNum(b) ? b : 0),
    0,
  );
  return section(
    'settings',
    'Settings and timings',
    `<table><tbody>
${settings}
</tbody></table>
<table>
<thead><tr><th>Job</th><th>Stage</th><th class="num">Seconds</th></tr></thead>
<tbody>
${timing.join('\n')}
<tr><th colspan="2">Total</th><td class="num">${fixed(total, 1)}</td></tr>
</tbody>
</table>`,
  );
}

function renderFiles(r: ReportData): string {
  const files = r.export.files;
  const rows = files.map(
    (f) =>
      `<tr><td><code>${esc(f.name)}</code></td><td class="num">${bytes(f.bytes)}</td><td class="num">${formatInt(f.bytes)}</td></tr>`,
  );
  const total = files.reduce((a, f) => a + (isNum(f.bytes) ? f.bytes : 0), 0);
  return section(
    'files',
    'Exported files',
    `<p>In <code>${esc(r.export.dir)}</code></p>
<table>
<thead><tr><th>File</th><th class="num">Size</th><th class="num">Bytes</th></tr></thead>
<tbody>
${rows.join('\n')}
<tr><th>Total</th><td class="num">${bytes(total)}</td><td class="num">${formatInt(total)}</td></tr>
</tbody>
</table>`,
  );
}

/** The whole report as one standalone HTML document. */
export function renderReportHtml(report: ReportData): string {
  const d = report.model.info.headDim;
  const body = [
    renderHeader(report),
    renderSummary(report),
    renderAllocationChart(report.compress, d),
    renderCurves(report.compress, d),
    renderMemory(report),
    renderLayers(report.compress),
    renderSettings(report),
    renderFiles(report),
  ].join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="generator" content="Rankwise">
<title>Rankwise report — ${esc(baseName(report.model.dir))}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}
