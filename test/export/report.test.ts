import { describe, expect, it } from 'vitest';

import { paretoFront } from '../../main/core/allocate/index.ts';
import type { CompressReport } from '../../main/contract/report.ts';
import { exportedCompressReport } from '../../main/export/exported-layers.ts';
import { DEFAULT_MEMORY_BYTES, memoryTable, sequencesThatFit } from '../../main/export/memory.ts';
import { escapeHtml, formatError, formatInt, renderReportHtml } from '../../main/export/report-html.ts';
import { REPORT_FORMAT, REPORT_VERSION } from '../../main/contract/report.ts';
import type { ReportData } from '../../main/contract/report.ts';
import { badInputFrom } from '../helpers/errors.ts';
import { nonCamelKeys } from '../helpers/json-keys.ts';

const D = 8;
const LAYERS = 4;
const KV_HEADS = 2;
/** 2 · L · H_kv · d · 2 bytes (BF16). */
const KV_ORIGINAL = 2 * LAYERS * KV_HEADS * D * 2;

/** Separable, decreasing in both ranks, exactly 0 at full rank: a log-scale range like real profiles. */
const errorAt = (layer: number, k: number, v: number) =>
  (0.4 + 0.1 * layer) * (1 - k / D) ** 3 + 0.2 * (1 - v / D) ** 2;

function profileOf(layer: number) {
  const points = [];
  for (let k = 1; k <= D; k++) {
    for (let v = 1; v <= D; v++) points.push({ kRank: k, vRank: v, error: errorAt(layer, k, v) });
  }
  return points;
}

const frontOf = (points: { kRank: number; vRank: number; error: number }[]) => paretoFront(points);

/** Which Pareto point each layer gets: the cheapest, two in between, and full rank (error 0). */
const CHOSEN_INDEX = [0, 3, 7, Infinity];

function fixture(opts: { profile?: boolean; dir?: string } = {}): ReportData {
  const profile = Array.from({ length: LAYERS }, (_, l) => profileOf(l));
  // Chosen points taken from the front, so each marker must land on a vertex of its layer's curve.
  const layers = profile.map((points, layer) => {
    const front = frontOf(points);
    const p = front[Math.min(CHOSEN_INDEX[layer], front.length - 1)];
    return { layer, kRank: p.kRank, vRank: p.vRank, keySpace: 'post-rope' as const, error: p.error };
  });
  const kvCompressed = layers.reduce((a, l) => a + (l.kRank + l.vRank) * KV_HEADS * 2, 0);
  const compress: CompressReport = {
    model: opts.dir ?? '/models/tiny-llama',
    method: 'kqsvd',
    keySpace: 'auto',
    window: 128,
    calibWindows: 6,
    heldoutWindows: 2,
    profileTokens: 32,
    evalWindows: 4,
    device: 'cpu',
    perplexity: { original: 12.5, compressed: 13.25 },
    kvBytesPerToken: { original: KV_ORIGINAL, compressed: kvCompressed },
    kvFraction: kvCompressed / KV_ORIGINAL,
    layers,
    allocation: { kind: 'memory', target: 0.6, feasible: true, weightedError: 0.01 },
    seconds: { load: 0.5, capture: 1.25, profile: 3, allocate: 0.01, eval: 2 },
  };
  if (opts.profile !== false) compress.profile = profile;
  else delete compress.allocation;
  return {
    format: REPORT_FORMAT,
    version: REPORT_VERSION,
    created: '2025-01-02T03:04:05.000Z',
    model: {
      dir: compress.model,
      info: {
        modelType: 'llama',
        family: 'llama',
        layers: LAYERS,
        heads: 4,
        kvHeads: KV_HEADS,
        headDim: D,
        hiddenSize: 32,
        vocabSize: 100,
        maxPositions: 512,
        rope: 10000,
        qkNorm: false,
        dtype: 'BF16',
        parameters: 50_000,
        kvBytesPerToken: KV_ORIGINAL,
        kvBytesPerSequence: [{ tokens: 4096, bytes: 4096 * KV_ORIGINAL }],
      },
    },
    compress,
    memory: memoryTable({
      kvBytesPerToken: { original: KV_ORIGINAL, compressed: kvCompressed },
      weightsBytes: { original: 100_000, compressed: 101_024 },
    }),
    export: {
      dir: '/out/tiny-llama-kv',
      files: [
        { name: 'model.safetensors', bytes: 101_024 },
        { name: 'config.json', bytes: 812 },
      ],
      seconds: { write: 0.2, verify: 1.5 },
      verification: {
        windows: 2,
        checkpointRelError: 0,
        onnxRelError: 3.2e-6,
        onnxPrefillTokens: 64,
        onnxDecodeSteps: 16,
        perplexity: { reloaded: 13.25, inMemory: 13.25 },
        presentBytes: { measured: 1000, predicted: 1000 },
        tolerance: 1e-4,
        passed: true,
      },
    },
  };
}

/** The markup of the `<svg id="…">` element. */
function svgById(html: string, id: string): string {
  const m = new RegExp(`<svg id="${id}"[\\s\\S]*?</svg>`).exec(html);
  if (!m) throw new Error(`no svg #${id}`);
  return m[0];
}

const attr = (tag: string, name: string): string => {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  if (!m) throw new Error(`no ${name} in ${tag}`);
  return m[1];
};
const num = (tag: string, name: string) => Number(attr(tag, name));

describe('memoryTable', () => {
  it('prices a small model exactly, with explicit options', () => {
    const t = memoryTable(
      {
        kvBytesPerToken: { original: 256, compressed: 160 },
        weightsBytes: { original: 1_000_000, compressed: 1_000_500 },
      },
      { contexts: [10, 100], contextTokens: 1000, batch: 3, memoryBytes: 2_000_000 },
    );
    expect(t).toEqual({
      kvBytesPerToken: { original: 256, compressed: 160 },
      perSequence: [
        { tokens: 10, kvBytesOriginal: 2560, kvBytesCompressed: 1600 },
        { tokens: 100, kvBytesOriginal: 25_600, kvBytesCompressed: 16_000 },
      ],
      weightsBytes: { original: 1_000_000, compressed: 1_000_500 },
      // 1e6 + 3 · 1000 · 256 and 1 000 500 + 3 · 1000 · 160
      totals: { contextTokens: 1000, batch: 3, original: 1_768_000, compressed: 1_480_500 },
      // ⌊1 000 000 / 256 000⌋ = 3 and ⌊999 500 / 160 000⌋ = 6
      concurrency: {
        memoryBytes: 2_000_000,
        contextTokens: 1000,
        sequencesOriginal: 3,
        sequencesCompressed: 6,
      },
    });
  });

  it('defaults to 4k/32k/128k contexts, 4096 tokens, batch 1 and 24 GiB (an 8B-class model)', () => {
    expect(DEFAULT_MEMORY_BYTES).toBe(25_769_803_776);
    // 2 · 32 layers · 8 KV heads · 128 · 2 bytes = 131 072 bytes per token, halved by compression
    const t = memoryTable({
      kvBytesPerToken: { original: 131_072, compressed: 65_536 },
      weightsBytes: { original: 16_000_000_000, compressed: 16_100_000_000 },
    });
    expect(t.perSequence).toEqual([
      { tokens: 4096, kvBytesOriginal: 536_870_912, kvBytesCompressed: 268_435_456 },
      { tokens: 32_768, kvBytesOriginal: 4_294_967_296, kvBytesCompressed: 2_147_483_648 },
      { tokens: 131_072, kvBytesOriginal: 17_179_869_184, kvBytesCompressed: 8_589_934_592 },
    ]);
    expect(t.totals).toEqual({
      contextTokens: 4096,
      batch: 1,
      original: 16_536_870_912,
      compressed: 16_368_435_456,
    });
    // 9 769 803 776 free / 536 870 912 = 18.2; 9 669 803 776 / 268 435 456 = 36.02
    expect(t.concurrency).toEqual({
      memoryBytes: 25_769_803_776,
      contextTokens: 4096,
      sequencesOriginal: 18,
      sequencesCompressed: 36,
    });
  });

  it('fits no sequence when the weights alone fill or exceed the memory', () => {
    const t = memoryTable(
      {
        kvBytesPerToken: { original: 100, compressed: 50 },
        weightsBytes: { original: 5000, compressed: 1000 },
      },
      { contextTokens: 10, memoryBytes: 1000 },
    );
    expect(t.concurrency.sequencesOriginal).toBe(0);
    expect(t.concurrency.sequencesCompressed).toBe(0);
    expect(sequencesThatFit(1000, 1001, 1)).toBe(0);
  });

  it('counts a sequence that fits to the byte, and not one byte short', () => {
    expect(sequencesThatFit(1000 + 5 * 300, 1000, 300)).toBe(5);
    expect(sequencesThatFit(1000 + 5 * 300 - 1, 1000, 300)).toBe(4);
    // near the top of the exact range
    const per = 2 ** 40 + 3;
    expect(sequencesThatFit(4095 * per + 7, 7, per)).toBe(4095);
    expect(sequencesThatFit(4095 * per + 6, 7, per)).toBe(4094);
  });

  it('rejects inputs that are not positive integers, naming them', () => {
    const kv = { original: 256, compressed: 128 };
    const weights = { original: 1000, compressed: 1000 };
    const cases: [() => unknown, RegExp][] = [
      [
        () => memoryTable({ kvBytesPerToken: { original: 0, compressed: 1 }, weightsBytes: weights }),
        /original KV/,
      ],
      [
        () => memoryTable({ kvBytesPerToken: { original: 256, compressed: 1.5 }, weightsBytes: weights }),
        /compressed KV/,
      ],
      [
        () => memoryTable({ kvBytesPerToken: kv, weightsBytes: { original: -1, compressed: 1 } }),
        /original weights/,
      ],
      [
        () => memoryTable({ kvBytesPerToken: kv, weightsBytes: { original: 1, compressed: NaN } }),
        /compressed weights/,
      ],
      [
        () => memoryTable({ kvBytesPerToken: kv, weightsBytes: weights }, { contexts: [] }),
        /at least one context/,
      ],
      [
        () => memoryTable({ kvBytesPerToken: kv, weightsBytes: weights }, { contexts: [4096, 0] }),
        /context length/,
      ],
      [
        () => memoryTable({ kvBytesPerToken: kv, weightsBytes: weights }, { contextTokens: 0 }),
        /contextTokens/,
      ],
      [() => memoryTable({ kvBytesPerToken: kv, weightsBytes: weights }, { batch: 2.5 }), /batch/],
      [
        () => memoryTable({ kvBytesPerToken: kv, weightsBytes: weights }, { memoryBytes: 2 ** 60 }),
        /memoryBytes/,
      ],
    ];
    for (const [fn, message] of cases) {
      const e = badInputFrom(fn);
      expect(e.message).toMatch(message);
      expect(e.message).toMatch(/positive integer|at least one/);
    }
  });
});

describe('escapeHtml and number formatting', () => {
  it('escapes the five HTML-significant characters, ampersands first', () => {
    expect(escapeHtml(`<a href="x">'&amp;'</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;amp;&#39;&lt;/a&gt;',
    );
    expect(escapeHtml('plain/path_1.2 – ü')).toBe('plain/path_1.2 – ü');
  });

  it('groups integers and switches small errors to exponent form', () => {
    expect(formatInt(1_234_567)).toBe('1,234,567');
    expect(formatInt(999)).toBe('999');
    expect(formatInt(NaN)).toBe('—');
    expect(formatError(0)).toBe('0');
    expect(formatError(0.0123456)).toBe('0.0123');
    expect(formatError(3.2e-6)).toBe('3.20e-6');
  });
});

describe('renderReportHtml', () => {
  const report = fixture();
  const html = renderReportHtml(report);

  it('is one standalone document: doctype, no script, nothing fetched from anywhere', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<html/g)).toHaveLength(1);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\s(?:src|href|xlink:href)\s*=/i);
    expect(html).not.toMatch(/http/i);
    expect(html).not.toMatch(/@import|<link|<img|<iframe|<object/i);
    // CSS/SVG url() may only point inside the document
    for (const m of html.matchAll(/url\(([^)]*)\)/g)) expect(m[1]).toMatch(/^#/);
    expect(html).toMatch(/@media \(prefers-color-scheme: dark\)/);
  });

  it('shows the header and summary figures', () => {
    expect(html).toContain('kqsvd');
    expect(html).toContain('2025-01-02T03:04:05.000Z');
    expect(html).toContain('12.500 → 13.250');
    expect(html).toMatch(/Profile positions per held-out window<\/t[hd]>\s*<td[^>]*>32</);
    expect(html).toContain(`${KV_ORIGINAL} B → ${report.memory.kvBytesPerToken.compressed} B`);
    expect(html).toContain('passed');
  });

  it('says the objective, the predicted perplexity and the fine-tuning when the job had them', () => {
    expect(html).not.toContain('Allocation objective');
    const r = fixture();
    r.compress.objective = 'e2e';
    r.compress.predicted = { nllIncrease: 0.0583, perplexity: 13.25 };
    r.compress.finetune = {
      steps: 300,
      lr: 0.1,
      trainWindows: 4,
      layers: [
        {
          layer: 0,
          steps: 300,
          stopped: 'steps',
          bestStep: 300,
          heldoutLoss: { start: 0.0314, best: 0.0169 },
          trainLoss: null,
        },
        {
          layer: 2,
          steps: 50,
          stopped: 'diverged',
          bestStep: 0,
          heldoutLoss: { start: 0.02, best: 0.02 },
          trainLoss: null,
        },
      ],
      seconds: 61.5,
      warnings: ['layer 2: fine-tuning layer 2 diverged at step 50: <the held-out loss rose>'],
    };
    const out = renderReportHtml(r);
    expect(out).toMatch(/Allocation objective<\/th><td>end to end/);
    expect(out).toContain(
      '13.250, from its NLL increase of 0.0583 nats predicted for the evaluation text from the calibration windows',
    );
    expect(out).toContain('2 layers, up to 300 steps at learning rate 0.1, in 61.5 s');
    expect(out).toContain('0.0314 → 0.0169, 0.0200 → 0.0200');
    // a warning is text, escaped, never markup
    expect(out).toContain('&lt;the held-out loss rose&gt;');
  });

  it('draws one K/V bar group per layer, heights proportional to the ranks', () => {
    const svg = svgById(html, 'allocation-chart');
    const groups = [...svg.matchAll(/<g class="layer" data-layer="(\d+)"[^>]*>([\s\S]*?)<\/g>/g)];
    expect(groups.map((g) => Number(g[1]))).toEqual([0, 1, 2, 3]);
    expect(svg.match(/data-layer=/g)).toHaveLength(LAYERS);
    const scales: number[] = [];
    const baselines = new Set<string>();
    for (const [, layer, inner] of groups) {
      const l = report.compress.layers[Number(layer)];
      const k = /<rect class="bar k"[^>]*>/.exec(inner)![0];
      const v = /<rect class="bar v"[^>]*>/.exec(inner)![0];
      expect(num(k, 'data-rank')).toBe(l.kRank);
      expect(num(v, 'data-rank')).toBe(l.vRank);
      scales.push(num(k, 'height') / l.kRank, num(v, 'height') / l.vRank);
      baselines.add((num(k, 'y') + num(k, 'height')).toFixed(2));
      baselines.add((num(v, 'y') + num(v, 'height')).toFixed(2));
      expect(inner).toMatch(/<title>Layer \d+: key rank \d+, value rank \d+ of 8 per head/);
    }
    expect(scales[0]).toBeGreaterThan(0);
    for (const s of scales) expect(s).toBeCloseTo(scales[0], 2);
    expect(baselines.size).toBe(1);
    expect(svg).toMatch(/Rank per head \(of d = 8\)/);
    expect(svg).toMatch(/>Layer</);
    // full width: the viewBox scales to the page
    expect(svg).toMatch(/^<svg id="allocation-chart"[^>]*width="100%"/);
  });

  it('draws each layer’s Pareto front and marks every chosen point on it', () => {
    const svg = svgById(html, 'curves-chart');
    const curves = [...svg.matchAll(/<g class="curve" data-layer="(\d+)"><path d="([^"]*)"/g)];
    expect(curves.map((c) => Number(c[1]))).toEqual([0, 1, 2, 3]);
    const circles = [...svg.matchAll(/<circle class="chosen"[^>]*>/g)].map((m) => m[0]);
    expect(circles).toHaveLength(LAYERS);
    for (const [, layerText, d] of curves) {
      const layer = Number(layerText);
      const front = frontOf(report.compress.profile![layer]);
      const xy = d.slice(1).split(/[ML]/);
      expect(xy).toHaveLength(front.length);
      // x grows with k_rank + v_rank, error falls (y grows downwards)
      const parsed = xy.map((s) => s.split(',').map(Number));
      for (let i = 1; i < parsed.length; i++) {
        expect(parsed[i][0]).toBeGreaterThan(parsed[i - 1][0]);
        expect(parsed[i][1]).toBeGreaterThanOrEqual(parsed[i - 1][1]);
      }
      const chosen = report.compress.layers[layer];
      const circle = circles.find((c) => attr(c, 'data-layer') === layerText)!;
      expect(num(circle, 'data-k-rank')).toBe(chosen.kRank);
      expect(num(circle, 'data-v-rank')).toBe(chosen.vRank);
      // the fixture's chosen points are on the front, so the marker sits on a vertex of the curve
      expect(xy).toContain(`${attr(circle, 'cx')},${attr(circle, 'cy')}`);
    }
    expect(svg).toContain('(relative, log)');
    expect(svg).toContain('Layer cache kept (% of its full size)');
    // one legend entry per layer
    expect(html.match(/<span class="series" data-layer=/g)).toHaveLength(LAYERS);
  });

  it('keeps log tick labels apart on a narrow span of errors', () => {
    const narrow = fixture();
    const squash = (e: number) => 0.07 + 0.03 * e;
    narrow.compress.profile = narrow.compress.profile!.map((pts) =>
      pts.map((p) => ({ ...p, error: squash(p.error) })),
    );
    narrow.compress.layers = narrow.compress.layers.map((l) => ({ ...l, error: squash(l.error!) }));
    const svg = svgById(renderReportHtml(narrow), 'curves-chart');
    const ys = [...svg.matchAll(/<text class="tick y" x="-6" y="([^"]+)"/g)].map((m) => Number(m[1]));
    expect(ys.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < ys.length; i++) expect(Math.abs(ys[i] - ys[i - 1])).toBeGreaterThanOrEqual(16);
  });
  it('tabulates memory, layers, settings and files', () => {
    const m = report.memory;
    expect(html).toContain('Sequences of 4,096 tokens that fit in 24.0 GiB');
    const more = m.concurrency.sequencesCompressed - m.concurrency.sequencesOriginal;
    expect(more).toBeGreaterThan(0);
    expect(html).toContain(
      `<td class="num">${formatInt(m.concurrency.sequencesOriginal)}</td><td class="num">${formatInt(m.concurrency.sequencesCompressed)}</td><td class="num">+${formatInt(more)}`,
    );
    for (const tokens of ['4,096', '32,768', '131,072']) {
      expect(html).toContain(`KV cache of one sequence of ${tokens} tokens`);
    }
    const layerRows = html.match(/<tr><td class="num">\d+<\/td><td>post-rope<\/td>/g);
    expect(layerRows).toHaveLength(LAYERS);
    const l3 = report.compress.layers[3];
    expect(l3).toMatchObject({ kRank: D, vRank: D, error: 0 });
    expect(html).toContain(
      '<tr><td class="num">3</td><td>post-rope</td><td class="num">8</td><td class="num">8</td><td class="num">0</td></tr>',
    );
    expect(html).toContain('<code>model.safetensors</code>');
    expect(html).toContain('98.7 KiB');
    expect(html).toContain('<td>export</td><td>verify</td><td class="num">1.50</td>');
  });

  it('escapes strings from the data: a model path with markup in it stays text', () => {
    const evil = fixture({ dir: '/models/<img onerror=x>&"q"' });
    evil.export.files.push({ name: '<b>x</b>.json', bytes: 1 });
    const out = renderReportHtml(evil);
    expect(out).not.toContain('<img');
    expect(out).not.toContain('<b>');
    expect(out).toContain('/models/&lt;img onerror=x&gt;&amp;&quot;q&quot;');
    expect(out).toContain('&lt;b&gt;x&lt;/b&gt;.json');
  });

  it('renders a fixed-rank report without a profile, saying so', () => {
    const fixed = fixture({ profile: false });
    const out = renderReportHtml(fixed);
    expect(out.startsWith('<!doctype html>')).toBe(true);
    expect(out).not.toContain('id="curves-chart"');
    expect(out).toContain('No error-rank profile was measured');
    expect(svgById(out, 'allocation-chart').match(/<g class="layer" data-layer=/g)).toHaveLength(LAYERS);
  });
});

/**
 * The fixture exported with two layers set by hand: layer 0 to full rank (a profiled point, error 0) and
 * layer 1 to 3/3, which this profile lacks (so its error is not known).
 */
function editedFixture(): ReportData {
  const r = fixture();
  const job = r.compress as CompressReport;
  job.profile![1] = job.profile![1].filter((p) => !(p.kRank === 3 && p.vRank === 3));
  const layouts = job.layers.map(({ kRank, vRank, keySpace }) => ({ kRank, vRank, keySpace }));
  layouts[0] = { ...layouts[0], kRank: D, vRank: D };
  layouts[1] = { ...layouts[1], kRank: 3, vRank: 3 };
  const compressed = layouts.reduce((a, l) => a + (l.kRank + l.vRank) * KV_HEADS * 2, 0);
  const kv = { original: KV_ORIGINAL, compressed };
  r.compress = exportedCompressReport(job, layouts, { kvBytesPerToken: kv, perplexity: 12.75 });
  r.memory = memoryTable({ kvBytesPerToken: kv, weightsBytes: { original: 100_000, compressed: 101_024 } });
  r.export.evaluation = { windows: 4, window: 128, perplexity: 12.75, inMemory: 13.25 };
  return r;
}

describe('renderReportHtml of an export edited by hand', () => {
  const report = editedFixture();
  const job = report.compress.jobAllocation!.layers;
  const html = renderReportHtml(report);

  it('lists the edited layers, job’s ranks → exported ranks, near the top', () => {
    const note = /<div class="edits" id="edits">[\s\S]*?<\/div>/.exec(html)![0];
    const items = [...note.matchAll(/<li data-layer="(\d+)">([^<]*)<\/li>/g)];
    expect(items.map((m) => m[2])).toEqual([
      `Layer 0: K ${job[0].kRank} → 8, V ${job[0].vRank} → 8`,
      `Layer 1: K ${job[1].kRank} → 3, V ${job[1].vRank} → 3`,
    ]);
    expect(note).toContain('compress.jobAllocation');
    expect(html.indexOf('id="edits"')).toBeLessThan(html.indexOf('id="allocation"'));
  });

  it('headlines the exported perplexity and calls the job’s figure the unedited allocation’s', () => {
    expect(html).toContain('12.500 → 12.750');
    expect(html).toContain("the job's allocation, before the edits below, in memory: 13.250");
  });

  it('draws the exported ranks, and marks the edited bars as set by hand', () => {
    const svg = svgById(html, 'allocation-chart');
    const groups = [...svg.matchAll(/<g class="layer" data-layer="(\d+)"[^>]*>([\s\S]*?)<\/g>/g)];
    const ranks = groups.map(([, , inner]) => [
      num(/<rect class="bar k"[^>]*>/.exec(inner)![0], 'data-rank'),
      num(/<rect class="bar v"[^>]*>/.exec(inner)![0], 'data-rank'),
    ]);
    expect(ranks).toEqual(report.compress.layers.map((l) => [l.kRank, l.vRank]));
    expect(groups.map(([, , inner]) => inner.includes('set by hand'))).toEqual([true, true, false, false]);
    // layer 1's error was not measured: the tooltip has no number for it
    expect(groups[1][2]).toMatch(/layer output error –/);
  });

  it('tabulates the exported ranks, “not measured” where no error was, and the job’s ranks edited', () => {
    const body = /<table id="layers-table">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(html)![1];
    const rows = [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map(([, r]) =>
      [...r.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]),
    );
    expect(rows).toEqual([
      ['0', 'post-rope', '8', '8', '0', `${job[0].kRank} / ${job[0].vRank}`],
      ['1', 'post-rope', '3', '3', 'not measured', `${job[1].kRank} / ${job[1].vRank}`],
      ['2', 'post-rope', String(job[2].kRank), String(job[2].vRank), formatError(job[2].error), ''],
      ['3', 'post-rope', '8', '8', '0', ''],
    ]);
    expect(html).toContain('“Not measured”');
  });

  it('marks exported points on the curves, none for the layer without a measured error', () => {
    const svg = svgById(html, 'curves-chart');
    const circles = [...svg.matchAll(/<circle class="chosen"[^>]*>/g)].map((m) => m[0]);
    expect(circles.map((c) => attr(c, 'data-layer'))).toEqual(['0', '2', '3']);
    expect([num(circles[0], 'data-k-rank'), num(circles[0], 'data-v-rank')]).toEqual([8, 8]);
    expect(html).toContain('Layer 1 was exported at ranks the job did not measure');
  });

  it('an unedited export shows no edit note and no job column', () => {
    const plain = fixture();
    const c = plain.compress as CompressReport;
    plain.compress = exportedCompressReport(c, c.layers, {
      kvBytesPerToken: c.kvBytesPerToken,
      perplexity: c.perplexity.compressed,
    });
    expect(plain.compress.edits).toEqual([]);
    const out = renderReportHtml(plain);
    expect(out).not.toContain('id="edits"');
    expect(out).not.toContain("Job's k_rank");
    expect(out).toBe(renderReportHtml(fixture()));
  });

  it('every key of the report JSON is camelCase (stage-name records aside)', () => {
    expect(nonCamelKeys(JSON.parse(JSON.stringify(report)))).toEqual([]);
    expect(nonCamelKeys(JSON.parse(JSON.stringify(fixture())))).toEqual([]);
  });
});
