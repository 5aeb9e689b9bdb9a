/**
 * One export round trip, as the acceptance asks: compress, export (verified), reload the folder
 * to the in-memory perplexity, and decode 64 greedy tokens with the ONNX file and its KV cache exactly as
 * the in-memory compressed model does, with a cache of exactly the predicted size.
 */
import path from 'node:path';
import ort from 'onnxruntime-node';
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
import type { OrtGreedyResult } from './ort-greedy.ts';

export const GREEDY_STEPS = 64;

const int64 = (values: number[], dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(values.map((v) => BigInt(v))), dims);

/**
 * Greedy decoding of an exported onnx/model.onnx with nothing but onnxruntime-node, as a stock runtime
 * drives it: an export declares its past widths symbolic, so the empty pasts take each layer's width
 * from the model's present outputs, and the presents are fed back as the next pasts.
 */
export async function exportGreedy(
  modelPath: string,
  prompt: ArrayLike<number>,
  steps: number,
): Promise<OrtGreedyResult> {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const outputs = new Map(session.outputMetadata.map((m) => [m.name, m]));
    const empty = (present: string) => {
      const m = outputs.get(present);
      if (!m?.isTensor) throw new Error(`no tensor output ${present}`);
      const [, heads, , width] = m.shape;
      return new ort.Tensor('float32', new Float32Array(0), [1, heads as number, 0, width as number]);
    };
    const layers = session.inputNames.filter((n) => n.startsWith('past_key_values.')).length / 2;
    let past: ort.Tensor[][] = Array.from({ length: layers }, (_, i) => [
      empty(`present.${i}.key`),
      empty(`present.${i}.value`),
    ]);
    const ids = Array.from(prompt);
    let feed = ids.slice();
    for (let s = 0; s < steps; s++) {
      const start = ids.length - feed.length;
      const feeds: Record<string, ort.Tensor> = {
        input_ids: int64(feed, [1, feed.length]),
        attention_mask: int64(new Array(ids.length).fill(1), [1, ids.length]),
        position_ids: int64(
          feed.map((_, t) => start + t),
          [1, feed.length],
        ),
      };
      past.forEach(([k, v], i) => {
        feeds[`past_key_values.${i}.key`] = k;
        feeds[`past_key_values.${i}.value`] = v;
      });
      const out = await session.run(feeds);
      const V = out.logits.dims[2];
      const row = (out.logits.data as Float32Array).subarray((feed.length - 1) * V, feed.length * V);
      let best = 0;
      for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
      past = past.map((_, i) => [out[`present.${i}.key`], out[`present.${i}.value`]]);
      ids.push(best);
      feed = [best];
    }
    return {
      ids,
      cacheDims: past.map(([k, v]) => [k.dims, v.dims]),
      cacheBytes: past.reduce(
        (a, [k, v]) => a + (k.data as Float32Array).byteLength + (v.data as Float32Array).byteLength,
        0,
      ),
    };
  } finally {
    await session.release();
  }
}

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
      report.eval_windows,
    );
    const ppl = await perplexity(new ModelRunner(engine, reloaded), windows);
    expect(Math.abs(ppl.perplexity / report.perplexity.compressed - 1)).toBeLessThan(1e-4);

    const prompt = windows[0].subarray(0, promptLength);
    const inMemory = new ModelRunner(engine, withCompression(original, plan.layers));
    const expected = await greedyDecode(inMemory, prompt, { steps: GREEDY_STEPS });
    const got = await exportGreedy(path.join(outDir, ONNX_FILE), prompt, GREEDY_STEPS);
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
