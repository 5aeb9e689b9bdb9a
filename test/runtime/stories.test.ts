import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openModel, type ModelHandle } from '../../main/model/model.ts';
import { loadTokenizer, type TextTokenizer } from '../../main/model/tokenizer.ts';
import { bosPrefixedWindows, firstParagraphs } from '../../main/data/paragraphs.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { ModelRunner } from '../../main/runtime/runner.ts';
import { forwardSequences } from '../../main/runtime/forward.ts';
import { perplexity } from '../../main/runtime/perplexity.ts';
import { greedyDecode } from '../../main/runtime/generate.ts';
import { STORIES_DIR, TINYSTORIES_TEXT } from '../helpers/paths.ts';

interface Reference {
  prompt: string;
  input_ids: number[];
  last_position_logits: number[];
  nll_per_predicted_token: number[];
  mean_nll: number;
  greedy_64_from_bos_ids: number[];
}

const ref: Reference = JSON.parse(fs.readFileSync(path.join(STORIES_DIR, 'reference_outputs.json'), 'utf8'));
let model: ModelHandle;
let engine: Engine;
let runner: ModelRunner;
let tokenizer: TextTokenizer;

beforeAll(async () => {
  model = await openModel(STORIES_DIR);
  engine = await Engine.create({ device: 'cpu' });
  runner = new ModelRunner(engine, model);
  tokenizer = await loadTokenizer(STORIES_DIR);
});

afterAll(async () => {
  await engine.release();
  await model.close();
});

describe('stories260K through the onnxruntime layer-by-layer forward', () => {
  it('reproduces the float64 reference logits and per-token NLL of the reference prompt', async () => {
    const ids = Int32Array.from(ref.input_ids);
    const { logits, nll } = await forwardSequences(runner, [ids], { logits: 'all' });
    const V = model.spec.vocabSize;
    const last = (logits as Float32Array[])[0].subarray((ids.length - 1) * V);
    const maxAbs = Math.max(...ref.last_position_logits.map((v, i) => Math.abs(last[i] - v)));
    expect(maxAbs).toBeLessThan(1e-4);
    const nllErr = Math.max(...ref.nll_per_predicted_token.map((v, i) => Math.abs(nll[0][i] - v)));
    expect(nllErr).toBeLessThan(1e-4);
    const mean = nll[0].reduce((a, b) => a + b, 0) / nll[0].length;
    expect(mean).toBeCloseTo(ref.mean_nll, 5);
  });

  it('batches ragged sequences without changing any of them', async () => {
    const a = Int32Array.from(ref.input_ids);
    const b = a.subarray(0, 17);
    const together = await forwardSequences(runner, [a, b, a], { logits: 'last' });
    const alone = await forwardSequences(runner, [b], { logits: 'last' });
    expect(together.logits![1]).toEqual(alone.logits![0]);
    expect(together.nll[0]).toEqual(together.nll[2]);
  });

  it('decodes 120 greedy tokens exactly as the reference and llama2.c run.c do', async () => {
    const out = await greedyDecode(runner, Int32Array.of(1), { steps: 120, stopIds: [1, 2] });
    expect(out.length).toBe(121);
    expect(Array.from(out.subarray(0, ref.greedy_64_from_bos_ids.length))).toEqual(
      ref.greedy_64_from_bos_ids,
    );
    const runc = fs.readFileSync(path.join(STORIES_DIR, 'runc_greedy_256.txt'), 'utf8');
    const text = tokenizer.decode(out, { skipSpecial: true });
    expect(text.length).toBeGreaterThan(250);
    expect(runc.startsWith(text)).toBe(true);
  });

  it('reproduces the README per-paragraph perplexity (first 300 paragraphs, <s> + paragraph)', async () => {
    const text = fs.readFileSync(TINYSTORIES_TEXT, 'utf8');
    const seqs = firstParagraphs(text, 300).map((p) => tokenizer.encode(p));
    const r = await perplexity(runner, seqs);
    expect(r.tokens).toBe(29_256);
    expect(Math.abs(r.meanNll - 1.4353) / 1.4353).toBeLessThan(0.005);
    expect(Math.abs(r.perplexity - 4.201) / 4.201).toBeLessThan(0.005);
  });

  it('reproduces the README long-context perplexity (60 windows of <s> + 511 tokens)', async () => {
    const text = fs.readFileSync(TINYSTORIES_TEXT, 'utf8');
    const r = await perplexity(runner, bosPrefixedWindows(text, tokenizer, { window: 512, count: 60 }));
    expect(r.tokens).toBe(30_660);
    expect(Math.abs(r.meanNll - 1.4218) / 1.4218).toBeLessThan(0.005);
    expect(Math.abs(r.perplexity - 4.145) / 4.145).toBeLessThan(0.005);
  });

  it('gives the same perplexity whatever the grouping and batching memory limits', async () => {
    const text = fs.readFileSync(TINYSTORIES_TEXT, 'utf8');
    const windows = bosPrefixedWindows(text, tokenizer, { window: 128, count: 12 });
    const big = await perplexity(runner, windows);
    // One window per group and per layer run: the plan degenerates to sequence-at-a-time.
    const small = await perplexity(runner, windows, { groupBytes: 1, batchBytes: 1 });
    expect(small.meanNll).toBeCloseTo(big.meanNll, 6);
  });

  it('reports progress in windows, ending at N/N, and stops when cancelled', async () => {
    const events: [number, number][] = [];
    const windows = [Int32Array.from(ref.input_ids), Int32Array.from(ref.input_ids)];
    await forwardSequences(runner, windows, { onProgress: (p) => events.push([p.done, p.total]) });
    // one event per unit of work (a group's embedding, each layer, the head), counted in windows
    expect(events.length % (model.spec.numLayers + 2)).toBe(0);
    expect(events.every(([, total]) => total === 2)).toBe(true);
    const done = events.map(([d]) => d);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(done.at(-1)).toBe(2);
    expect(done.slice(0, -1).every((d) => d < 2)).toBe(true);
    const controller = new AbortController();
    let seen = 0;
    const run = forwardSequences(runner, windows, {
      signal: controller.signal,
      onProgress: () => {
        if (++seen === 2) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ kind: 'cancelled' });
  });
});
