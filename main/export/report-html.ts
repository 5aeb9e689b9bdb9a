/**
 * The HTML form of `rankwise-report.json`: one self-contained file (inline CSS and SVG, no scripts, no
 * external resources) so it can be mailed, attached to an issue or opened offline and still show
 * everything. It renders the ReportData object and nothing else, so it never disagrees with the JSON.
 */
import { paretoFront } from '../core/allocate/index.ts';
import {
  ALLOCATION_BOX,
  allocationChart,
  allocationChartSvg,
  PROFILE_BOX,
  profileChart,
  profileChartSvg,
} from '../core/charts/index.ts';
import { escapeXml } from '../core/charts/svg.ts';
import { formatBytes } from '../core/format.ts';
import type { ExportedCompressReport, RankEdit, ReportData } from '../contract/report.ts';

/** Makes any string safe as HTML text and inside a double- or single-quoted attribute (the charts' own). */
export const escapeHtml = escapeXml;

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

/** A layer's error, or why there is none: the report shows only numbers that were measured. */
function layerError(x: number | null): string {
  return x === null ? 'not measured' : formatError(x);
}

function formatChange(before: number, after: number): string {
  if (!isNum(before) || !isNum(after) || before === 0) return '—';
  const pct = ((after - before) / before) * 100;
  return `${pct >= 0 ? '+' : '−'}${Math.abs(pct).toFixed(1)} %`;
}

function baseName(dir: string): string {
  const parts = dir.split(/[\\/]+/).filter((p) => p.length > 0);
  return parts.length > 0 ? parts[parts.length - 1] : dir;
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
svg .chosen { stroke: var(--fg); stroke-width: 1.5; }
svg .point { opacity: 0.7; }
svg .curve:hover path { stroke-width: 3; }
svg .curve:hover .point { opacity: 1; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: center; color: var(--muted); font-size: 0.9em; }
.legend .series svg { display: inline-block; vertical-align: middle; margin-right: 4px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 4px;
  vertical-align: -1px; }
.legend i.k { background: var(--k); } .legend i.v { background: var(--v); }
.edits { border-left: 4px solid var(--v); background: var(--panel); padding: 8px 12px; margin: 12px 0; }
.edits ul { margin: 4px 0 0; padding-left: 20px; }
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
  const o = v.onnx;
  const ev = r.export.evaluation;
  const edited = (c.edits?.length ?? 0) > 0;
  // the compressed perplexity is the exported files' own (reports that have it); the job's beside it, which
  // after hand edits belongs to ranks that were not exported
  const jobModel = edited
    ? "the job's allocation, before the edits below, in memory"
    : "the job's model in memory";
  const evalNote = ev
    ? `; the exported files' own, as <code>rankwise eval</code> measures them (${jobModel}: ${fixed(ev.inMemory, 3)})`
    : '';
  const onnxRows = o
    ? `<tr><th>ONNX decoder: cache / weights stored as</th><td class="num">${esc(o.cacheDtype)} / ${esc(o.weightsDtype)}</td></tr>
<tr><th>ONNX cache per token, measured / the original model's at its dtype</th><td class="num">${formatInt(o.cacheBytesPerToken.measured)} / ${formatInt(o.cacheBytesPerToken.original)} B</td></tr>`
    : '';
  const onnxTolerance = o?.tolerance ?? v.tolerance;
  return section(
    'summary',
    'Summary',
    `<div class="cards">
<div class="card"><h3>Perplexity</h3>
<div class="big">${fixed(c.perplexity.original, 3)} → ${fixed(c.perplexity.compressed, 3)}</div>
<div class="note">${formatChange(c.perplexity.original, c.perplexity.compressed)} on ${formatInt(c.evalWindows)} evaluation windows of ${formatInt(c.window)} tokens${evalNote}</div></div>
<div class="card"><h3>KV cache per token</h3>
<div class="big">${bytes(kv.original)} → ${bytes(kv.compressed)}</div>
<div class="note">${fixed(kept * 100, 1)} % kept (${formatInt(kv.original)} → ${formatInt(kv.compressed)} bytes)</div></div>
<div class="card"><h3>Verification</h3>
<div class="big">${status}</div>
<div class="note">checkpoint error ${formatError(v.checkpointRelError)} (tolerance ${formatError(v.tolerance)}), ONNX error ${formatError(v.onnxRelError)} (tolerance ${formatError(onnxTolerance)})</div></div>
</div>
${renderEdits(c.edits)}
<table>
<tbody>
<tr><th>Verification windows</th><td class="num">${formatInt(v.windows)}</td></tr>
<tr><th>Reloaded checkpoint vs in-memory model, max |Δlogit| / max |logit|</th><td class="num">${formatError(v.checkpointRelError)}</td></tr>
<tr><th>ONNX decoder with KV cache (${formatInt(v.onnxPrefillTokens)} prefill tokens, ${formatInt(v.onnxDecodeSteps)} decode steps)</th><td class="num">${formatError(v.onnxRelError)}</td></tr>
<tr><th>Perplexity, reloaded / in memory</th><td class="num">${fixed(v.perplexity.reloaded, 3)} / ${fixed(v.perplexity.inMemory, 3)}</td></tr>
<tr><th>ONNX <code>present</code> bytes, measured / predicted</th><td class="num">${formatInt(v.presentBytes.measured)} / ${formatInt(v.presentBytes.predicted)}</td></tr>
${onnxRows}
</tbody>
</table>`,
  );
}

/**
 * The layers whose exported ranks are not the job's allocation, job's → exported, so a reader comparing
 * this report with the job's own sees why they differ.
 */
function renderEdits(edits: readonly RankEdit[] | undefined): string {
  if (!edits || edits.length === 0) return '';
  const items = edits.map(
    (e) =>
      `<li data-layer="${esc(e.layer)}">Layer ${esc(e.layer)}: K ${esc(e.job.kRank)} → ${esc(e.exported.kRank)}, V ${esc(e.job.vRank)} → ${esc(e.exported.vRank)}</li>`,
  );
  const n = edits.length;
  return `<div class="edits" id="edits"><strong>Edited before export:</strong> ${n} ${n === 1 ? 'layer was' : 'layers were'} exported at other ranks than the job allocated (job's ranks → exported ranks, per KV head). Every figure in this report is the exported model's; the job's allocation is kept in the JSON as <code>compress.jobAllocation</code>.
<ul>
${items.join('\n')}
</ul></div>`;
}

/** Cache bytes per token of one rank of one side of a layer, from the report's own totals (as the wizard does). */
function bytesPerRank(c: ExportedCompressReport, d: number): number | undefined {
  const original = c.kvBytesPerToken?.original;
  const units = c.layers.length * 2 * d;
  return isNum(original) && units > 0 ? original / units : undefined;
}

function renderAllocationChart(c: ExportedCompressReport, d: number): string {
  // an unmeasured error is NaN to the shared chart, whose tooltips print it as a dash
  const layers = c.layers.map((l) => ({ ...l, error: l.error ?? NaN }));
  const edited = new Set((c.edits ?? []).map((e) => e.layer));
  const chart = allocationChart(layers, d, ALLOCATION_BOX, edited, bytesPerRank(c, d));
  const svg = allocationChartSvg(
    chart,
    'allocation-chart',
    `Per-head K and V ranks per layer as exported, out of d = ${d}`,
    {
      x: 'Layer',
      y: `Rank per head (of d = ${d})`,
    },
  );
  const alloc = c.allocation;
  const how = alloc
    ? `The job allocated by ${esc(alloc.kind)} with target ${esc(alloc.target)}: ${alloc.feasible ? 'feasible' : '<span class="bad">infeasible</span>'}${alloc.reason ? ` (${esc(alloc.reason)})` : ''}, weighted mean error ${formatError(alloc.weightedError)}.`
    : c.profile
      ? 'The job chose ranks per layer from the measured profiles.'
      : 'Fixed ranks: the job gave every layer the same ranks.';
  const editNote =
    edited.size > 0
      ? ` Then ${edited.size === 1 ? 'layer' : 'layers'} ${[...edited].join(', ')} ${edited.size === 1 ? 'was' : 'were'} set to other ranks before export (see the list above); the bars show what was exported.`
      : '';
  return section(
    'allocation',
    'Rank allocation',
    `<div class="legend"><span><i class="k"></i>K rank</span><span><i class="v"></i>V rank</span></div>
<figure>${svg}</figure>
<p class="note">${how}${editNote} Bar height is the per-head rank out of the head dimension d; hover a bar for its numbers.</p>`,
  );
}

function renderCurves(c: ExportedCompressReport, d: number): string {
  const profile = c.profile;
  if (!profile || profile.every((p) => p.length === 0)) {
    return section(
      'curves',
      'Error-rank curves',
      '<p>No error-rank profile was measured: the ranks were fixed, so each layer was measured at its one setting only (see the per-layer table).</p>',
    );
  }
  const curves = profile.flatMap((points, i) => {
    if (points.length === 0) return [];
    const chosen = c.layers[i];
    return [
      {
        layer: chosen?.layer ?? i,
        front: paretoFront(points.map((p) => ({ kRank: p.kRank, vRank: p.vRank, error: p.error }))),
        // a point without a measured error has no place on the error axis
        chosen:
          chosen && chosen.error !== null
            ? { kRank: chosen.kRank, vRank: chosen.vRank, error: chosen.error }
            : null,
      },
    ];
  });
  const unmeasured = c.layers.filter((l) => l.error === null).map((l) => l.layer);
  const unmeasuredNote =
    unmeasured.length > 0
      ? ` Layer${unmeasured.length === 1 ? '' : 's'} ${unmeasured.join(', ')} ${unmeasured.length === 1 ? 'was' : 'were'} exported at ranks the job did not measure, so ${unmeasured.length === 1 ? 'it has' : 'they have'} no circle.`
      : '';
  const chart = profileChart({ curves, headDim: d, box: PROFILE_BOX, bytesPerRank: bytesPerRank(c, d) });
  const svg = profileChartSvg(
    chart,
    'curves-chart',
    'Pareto front of relative layer-output error against the share of the layer’s cache kept, one line per layer',
  );
  const legend = chart.curves
    .map(
      (k) =>
        `<span class="series" data-layer="${k.layer}"><svg width="26" height="10" aria-hidden="true"><line x1="1" x2="25" y1="5" y2="5" stroke="${k.colour}" stroke-width="2"${k.dash ? ` stroke-dasharray="${k.dash}"` : ''}/></svg>${esc(k.name)}</span>`,
    )
    .join('');
  return section(
    'curves',
    'Error-rank curves',
    `<div class="legend">${legend}<span>● chosen ranks</span></div>
<figure>${svg}</figure>
<p class="note">For each layer, the measured (k_rank, v_rank) points that no other point beats on both cache size and error; large circles mark each layer's exported ranks.${unmeasuredNote} Errors of exactly 0 sit on the bottom edge. Hover a point for its ranks, bytes and error.</p>`,
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

function renderLayers(c: ExportedCompressReport): string {
  const edits = new Map((c.edits ?? []).map((e) => [e.layer, e]));
  // the column appears only when something was edited, so an unedited report reads as before
  const jobColumn = (layer: number) => {
    if (edits.size === 0) return '';
    const e = edits.get(layer);
    return `<td class="num">${e ? `${esc(e.job.kRank)} / ${esc(e.job.vRank)}` : ''}</td>`;
  };
  const rows = c.layers.map(
    (l) =>
      `<tr><td class="num">${esc(l.layer)}</td><td>${esc(l.keySpace)}</td><td class="num">${esc(l.kRank)}</td><td class="num">${esc(l.vRank)}</td><td class="num">${layerError(l.error)}</td>${jobColumn(l.layer)}</tr>`,
  );
  const jobHead = edits.size > 0 ? `<th class="num">Job's k_rank / v_rank (edited)</th>` : '';
  const unmeasured = c.layers.some((l) => l.error === null)
    ? ' “Not measured”: the layer was exported at ranks the job did not measure (outside its profiled grid, or a job of fixed ranks, which profiles none), so no error is shown.'
    : '';
  return section(
    'layers',
    'Per-layer ranks',
    `<table id="layers-table">
<thead><tr><th class="num">Layer</th><th>Key space</th><th class="num">k_rank</th><th class="num">v_rank</th><th class="num">Error</th>${jobHead}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
<p class="note">The ranks as exported (config.json's <code>kv_compression</code>), per KV head; error is the relative decoder-layer output error on the held-out calibration windows, as the job measured it at those ranks.${unmeasured}</p>`,
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
    ...(c.profileTokens === undefined
      ? []
      : ([['Profile positions per held-out window', formatInt(c.profileTokens)]] as [string, string][])),
    ['Evaluation windows', formatInt(c.evalWindows)],
    ['Device', esc(c.device)],
  ];
  if (c.objective)
    items.push([
      'Allocation objective',
      c.objective === 'e2e' ? 'end to end (predicted NLL effect)' : 'layer errors',
    ]);
  if (c.predicted) {
    items.push([
      "Predicted perplexity (the job's allocation)",
      `${fixed(c.predicted.perplexity, 3)}, from its NLL increase of ${fixed(c.predicted.nllIncrease, 4)} nats predicted for the evaluation text from the calibration windows`,
    ]);
  }
  if (c.finetune) {
    const f = c.finetune;
    items.push([
      'Fine-tuning',
      `${formatInt(f.layers.length)} layers, up to ${formatInt(f.steps)} steps at learning rate ${f.lr}, in ${fixed(f.seconds, 1)} s; ` +
        `held-out layer loss ${f.layers.map((l) => `${fixed(l.heldoutLoss.start, 4)} → ${fixed(l.heldoutLoss.best, 4)}`).join(', ')}` +
        f.warnings.map((w) => `<br>warning: ${esc(w)}`).join(''),
    ]);
  }
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
