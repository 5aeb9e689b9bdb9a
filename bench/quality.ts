/**
 * The stories260K quality table of docs/methods.md (issue 12): every method at 25, 50 and 75 % of the KV
 * cache, allocated by the layer-error and by the end-to-end objective, with and without fine-tuning;
 * perplexity and wall time. The docs protocol: calibration on the first 16 windows of 512 of the
 * TinyStories excerpt's first half, evaluation on 64 windows of its second half. Each method's layers are
 * fitted once (an in-memory job cache); a row's time is that fit and profile plus its own stages.
 * Then thin keys at k = 2 of 8 with values full, rebuilt before RoPE (R1) and attending in the thin space
 * (R3), with and without fine-tuning. Run: `npm run bench:quality`.
 *
 *   BENCH_METHODS=kqsvd,ksvd     only these methods (empty: only the thin keys table)
 *   BENCH_FRACTIONS=0.5          only these cache fractions
 *   BENCH_FINETUNE_STEPS=300     fine-tuning steps per layer (default 300)
 *   BENCH_OBJECTIVES=e2e         only these objectives (default layer,e2e)
 *   BENCH_FINETUNE=0             no fine-tuned rows
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CompressReport } from '../main/contract/report.ts';
import type { MethodId } from '../main/core/kv.ts';
import { compress, type CompressSettings } from '../main/jobs/compress.ts';
import type { StoredLayer } from '../main/jobs/layer-store.ts';
import { METHOD_IDS } from '../main/methods/index.ts';
import { docsProtocolTexts, STORIES } from './docs-protocol.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rankwise-quality-'));
const { calib, evalFile } = docsProtocolTexts(tmp);
const methods = (process.env.BENCH_METHODS?.split(',').filter(Boolean) ?? METHOD_IDS) as MethodId[];
const fractions = (process.env.BENCH_FRACTIONS ?? '0.25,0.5,0.75').split(',').map(Number);
const steps = Number(process.env.BENCH_FINETUNE_STEPS ?? 300);
const objectives = (process.env.BENCH_OBJECTIVES ?? 'layer,e2e').split(',') as ('layer' | 'e2e')[];
const tunings = process.env.BENCH_FINETUNE === '0' ? [undefined] : [undefined, { steps }];

const base = { modelDir: STORIES, calib, eval: evalFile, window: 512, calibWindows: 16, evalWindows: 64 };
let original = Number.NaN;
const total = (r: CompressReport, skip: string[] = []) =>
  Object.entries(r.seconds).reduce((a, [k, v]) => a + (skip.includes(k) ? 0 : v), 0);

console.log(
  '| method | cache | objective | fine-tuning | perplexity | predicted | ranks (k/v per layer) | time (s) |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const method of methods) {
  const layers = new Map<number, StoredLayer>();
  const layerStore = {
    load: async (layer: number) => layers.get(layer) ?? null,
    save: async (layer: StoredLayer) => void layers.set(layer.layer, layer),
  };
  let fitSeconds: number | null = null;

  for (const kvFraction of fractions) {
    for (const objective of objectives) {
      for (const finetune of tunings) {
        const s: CompressSettings = { ...base, method, kvFraction, objective, finetune };
        const r = await compress(s, { layerStore });
        // the first run fits and profiles every layer; later ones load them
        fitSeconds ??= (r.seconds.profile ?? 0) + (r.seconds.capture ?? 0) + (r.seconds.train ?? 0);
        original = r.perplexity.original;
        const seconds = fitSeconds + total(r, ['profile', 'capture', 'train']);
        console.log(
          `| ${method} | ${kvFraction * 100} % | ${objective} | ${finetune ? `${steps} steps` : '—'} | ` +
            `${r.perplexity.compressed.toFixed(3)} | ${r.predicted ? r.predicted.perplexity.toFixed(3) : '—'} | ` +
            `${r.layers.map((l) => `${l.kRank}/${l.vRank}`).join(' ')} | ${seconds.toFixed(1)} |`,
        );
      }
    }
  }
}

console.log('\nThin keys, k = 2 of 8, values full:\n');
console.log('| key space | fine-tuning | perplexity | time (s) |');
console.log('|---|---|---|---|');
for (const keySpace of ['pre-rope', 'thin-rope'] as const) {
  for (const finetune of [undefined, { steps }]) {
    const r = await compress({ ...base, method: 'thinkeys', keySpace, ranks: { k: 2, v: 8 }, finetune });
    original = r.perplexity.original;
    console.log(
      `| ${keySpace} | ${finetune ? `${steps} steps` : '—'} | ${r.perplexity.compressed.toFixed(3)} | ` +
        `${total(r).toFixed(1)} |`,
    );
  }
}
console.log(`\nOriginal perplexity ${original.toFixed(3)}.`);
fs.rmSync(tmp, { recursive: true, force: true });
