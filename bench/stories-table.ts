/**
 * The stories260K method table of docs/methods.md: perplexity of every method at per-head ranks 2, 4, 6
 * and 8, compressing keys only, values only, or both. Calibration on the first half of the TinyStories
 * excerpt, evaluation on the second half, windows of 512 tokens. Run: `npm run bench:methods`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openModel } from '../main/model/model.ts';
import { loadTokenizer } from '../main/model/tokenizer.ts';
import { loadWindows } from '../main/data/windows.ts';
import { Engine } from '../main/runtime/engine.ts';
import { ModelRunner, withCompression } from '../main/runtime/runner.ts';
import { captureGrams } from '../main/runtime/capture.ts';
import { perplexity } from '../main/runtime/perplexity.ts';
import { methodById } from '../main/methods/index.ts';
import type { LayerFit } from '../main/methods/types.ts';
import type { KeySpace, LayerCompression, MethodId } from '../main/core/kv.ts';
import { docsProtocolTexts, STORIES } from './docs-protocol.ts';

const CALIB_WINDOWS = Number(process.env.CALIB_WINDOWS ?? 32);
const EVAL_WINDOWS = Number(process.env.EVAL_WINDOWS ?? 64);

const VARIANTS: [MethodId, KeySpace][] = [
  ['ksvd', 'pre-rope'],
  ['ksvd', 'post-rope'],
  ['eigen', 'pre-rope'],
  ['kqsvd', 'post-rope'],
  ['kqsvd', 'pre-rope'],
  ['thinkeys', 'pre-rope'],
];

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rankwise-table-'));
  const { calib, evalFile } = docsProtocolTexts(tmp);
  const model = await openModel(STORIES);
  const spec = model.spec;
  const d = spec.headDim;
  const engine = await Engine.create();
  const tokenizer = await loadTokenizer(STORIES);
  const calibWindows = (await loadWindows(calib, tokenizer, { window: 512, count: CALIB_WINDOWS })).windows;
  const evalWindows = (await loadWindows(evalFile, tokenizer, { window: 512, count: EVAL_WINDOWS })).windows;
  const runner = new ModelRunner(engine, model);
  const t0 = performance.now();
  const grams = await captureGrams(runner, calibWindows);
  const captureSeconds = (performance.now() - t0) / 1000;
  const weights = await Promise.all(Array.from({ length: spec.numLayers }, (_, i) => model.loadLayer(i)));
  const original = await perplexity(runner, evalWindows);
  const bytesPerToken = (kDim: number, vDim: number) => (kDim + vDim) * spec.numKvHeads * spec.numLayers * 4;

  const lines: string[] = [];
  lines.push(
    `Original perplexity ${original.perplexity.toFixed(4)} (${evalWindows.length} × 512 eval tokens; ` +
      `KV cache ${bytesPerToken(d, d)} B/token, F32). Calibration: ${calibWindows.length} windows of 512, ` +
      `Gram capture ${captureSeconds.toFixed(1)} s.`,
  );
  lines.push('');
  lines.push('| method | key space | rank | K only | V only | K and V |');
  lines.push('|---|---|---|---|---|---|');
  for (const [id, space] of VARIANTS) {
    const method = methodById(id);
    const tFit = performance.now();
    const fits: LayerFit[] = grams.map((g, layer) =>
      method.fit({ layer, weights: weights[layer], grams: g }, spec, space),
    );
    const fitSeconds = (performance.now() - tFit) / 1000;
    for (const r of [2, 4, 6, 8]) {
      const cells: string[] = [];
      for (const mode of ['k', 'v', 'kv'] as const) {
        const comps: LayerCompression[] = fits.map((f) => {
          const c = f.at(mode === 'v' ? d : r, mode === 'k' ? d : r);
          return { ...c, keys: mode === 'v' ? null : c.keys, values: mode === 'k' ? null : c.values };
        });
        const ppl = await perplexity(new ModelRunner(engine, withCompression(model, comps)), evalWindows);
        const kDim = mode === 'v' ? d : r;
        const vDim = mode === 'k' ? d : r;
        cells.push(`${ppl.perplexity.toFixed(3)} (${bytesPerToken(kDim, vDim)} B)`);
      }
      lines.push(`| ${id} | ${space} | ${r} | ${cells.join(' | ')} |`);
      process.stderr.write(`${id} ${space} r=${r} done (fit ${fitSeconds.toFixed(2)} s)\n`);
    }
  }
  console.log(lines.join('\n'));
  await engine.release();
  await model.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}

await main();
