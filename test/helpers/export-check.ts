/**
 * One export round trip, as the acceptance asks: compress, export (verified), reload the folder
 * to the in-memory perplexity, and decode 64 greedy tokens with the ONNX file and its KV cache exactly as
 * the in-memory compressed model does, with a cache of exactly the predicted size.
 */
import path from 'node:path';
import { expect } from 'vitest';

import { exportPlan } from '../../main/export/export.ts';
import { ONNX_FILE } from '../../main/export/onnx-files.ts';
import { compressToPlan, type CompressSettings } from '../../main/jobs/compress.ts';
import { loadWindows } from '../../main/data/windows.ts';
import { kvElementsPerToken } from '../../main/model/kv-layout.ts';
import { openModel } from '../../main/model/model.ts';
import { loadTokenizer } from '../../main/model/tokenizer.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { greedyDecode } from '../../main/runtime/generate.ts';
import { perplexity } from '../../main/runtime/perplexity.ts';
import { ModelRunner, withCompression } from '../../main/runtime/runner.ts';
import { ortGreedy } from './ort-greedy.ts';

export const GREEDY_STEPS = 64;

export async function checkExportRoundTrip(settings: CompressSettings, outDir: string, promptLength = 8) {
  const { report, plan } = await compressToPlan(settings);
  const exported = await exportPlan(plan, { out: outDir });
  expect(exported.export.verification.passed).toBe(true);

  const engine = await Engine.create();
  const original = await openModel(settings.modelDir);
  const reloaded = await openModel(outDir);
  try {
    // the folder reloads to the perplexity the compress job measured in memory, on the same windows
    const tokenizer = await loadTokenizer(original.dir);
    const windows = (await loadWindows(settings.eval, tokenizer, { window: report.window })).windows.slice(
      0,
      report.evalWindows,
    );
    const ppl = await perplexity(new ModelRunner(engine, reloaded), windows);
    expect(Math.abs(ppl.perplexity / report.perplexity.compressed - 1)).toBeLessThan(1e-4);

    const prompt = windows[0].subarray(0, promptLength);
    const inMemory = new ModelRunner(engine, withCompression(original, plan.layers));
    const expected = await greedyDecode(inMemory, prompt, { steps: GREEDY_STEPS });
    const got = await ortGreedy(path.join(outDir, ONNX_FILE), prompt, GREEDY_STEPS);
    expect(got.ids).toEqual(Array.from(expected));

    // the cache holds every token but the last generated one, at exactly the planned widths
    const spec = reloaded.spec;
    const cached = promptLength + GREEDY_STEPS - 1;
    got.cacheDims.forEach(([k, v], i) => {
      expect(k).toEqual([1, spec.numKvHeads, cached, spec.kvCompression![i].kRank]);
      expect(v).toEqual([1, spec.numKvHeads, cached, spec.kvCompression![i].vRank]);
    });
    expect(got.cacheBytes).toBe(cached * kvElementsPerToken(spec.kvCompression, spec) * 4);
    return { report, plan, exported, spec };
  } finally {
    await reloaded.close();
    await original.close();
    await engine.release();
  }
}
