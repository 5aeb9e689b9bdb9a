/**
 * `rankwise generate`: llama2.c's own greedy text from the original and from a full-rank export, a
 * half-cache export compared with its original (divergence and a KL checked against an independent
 * in-memory forward), sampling invariants, and the bad inputs the command must refuse in one line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exportPlan } from '../../main/export/export.ts';
import { compressToPlan, type CompressionPlan } from '../../main/jobs/compress.ts';
import { openModel } from '../../main/model/model.ts';
import { loadTokenizer } from '../../main/model/tokenizer.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { forwardSequences } from '../../main/runtime/forward.ts';
import { ModelRunner, withCompression } from '../../main/runtime/runner.ts';
import { runCli } from '../helpers/cli.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const REFERENCE_TEXT = fs.readFileSync(path.join(STORIES_DIR, 'runc_greedy_256.txt'), 'utf8');
const STEPS = 64;
const base = {
  modelDir: STORIES_DIR,
  calib: TINYSTORIES_TEXT,
  eval: TINYSTORIES_TEXT,
  window: 128,
  calibWindows: 4,
  evalWindows: 2,
} as const;

let prompt = '';
let expectedIds: number[] = [];
let fullDir = '';
let halfDir = '';
let noOnnxDir = '';
let halfPlan: CompressionPlan;

interface JsonSide {
  ids: number[];
  text: string;
  stop_reason: string;
  kv_cache_bytes: number;
  kv_bytes_per_token: number;
  decode_tokens_per_second: number | null;
}
interface JsonResult {
  prompts: {
    prompt: string;
    model: JsonSide;
    compare?: JsonSide;
    comparison?: {
      first_divergence: number | null;
      identical_share: number;
      mean_kl: number;
      kl_positions: number;
    };
  }[];
  summary?: { mean_identical_share: number; mean_kl: number; first_divergences: (number | null)[] };
}

async function generateJson(args: string[]): Promise<JsonResult> {
  const r = await runCli(['generate', ...args, '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as JsonResult;
}

beforeAll(async () => {
  // llama2.c generated its text from BOS alone: its first tokens are a prompt whose greedy continuation
  // is the rest of the text, if the prompt tokenizes back to exactly those tokens
  const tokenizer = await loadTokenizer(STORIES_DIR);
  const reference = Array.from(tokenizer.encode(REFERENCE_TEXT));
  const promptIds = reference.slice(0, 6);
  prompt = tokenizer.decode(promptIds, { skipSpecial: true });
  expect(Array.from(tokenizer.encode(prompt))).toEqual(promptIds);
  expectedIds = reference.slice(6, 6 + STEPS);
  expect(expectedIds).toHaveLength(STEPS);

  const full = await compressToPlan({ ...base, method: 'ksvd', ranks: { k: 8, v: 8 } });
  fullDir = path.join(tmp.dir, 'full');
  await exportPlan(full.plan, { out: fullDir });
  const half = await compressToPlan({
    ...base,
    method: 'kqsvd',
    ranks: { k: 4, v: 4 },
    keySpace: 'pre-rope',
  });
  halfPlan = half.plan;
  halfDir = path.join(tmp.dir, 'half');
  await exportPlan(half.plan, { out: halfDir });
  noOnnxDir = path.join(tmp.dir, 'no-onnx');
  await exportPlan(half.plan, { out: noOnnxDir, onnx: false });
});

describe('rankwise generate', () => {
  it("prints llama2.c's 64 greedy tokens from the original folder, streamed as text", async () => {
    const json = await generateJson([STORIES_DIR, '--prompt', prompt, '--max-new-tokens', String(STEPS)]);
    const side = json.prompts[0].model;
    expect(side.ids).toEqual(expectedIds);
    expect(side.stop_reason).toBe('limit');
    // the cache holds the prompt and every generated token but the last, 1,280 B each in float32
    expect(side.kv_cache_bytes).toBe((6 + STEPS - 1) * 1280);

    const text = await runCli([
      'generate',
      STORIES_DIR,
      '--prompt',
      prompt,
      '--max-new-tokens',
      String(STEPS),
    ]);
    expect(text.code).toBe(0);
    const tokenizer = await loadTokenizer(STORIES_DIR);
    const continuation = tokenizer
      .decode([...tokenizer.encode(prompt), ...expectedIds], { skipSpecial: true })
      .slice(prompt.length);
    expect(text.stdout.startsWith(`${prompt}${continuation}\n`)).toBe(true);
    expect(REFERENCE_TEXT.startsWith(`${prompt}${continuation}`)).toBe(true);
    expect(text.stdout).toMatch(/decode\s+63 tokens in [\d.]+ s \([\d.]+ tokens\/s\)/);
    expect(text.stdout).toMatch(/device\s+cpu/);
  });

  it('prints the same tokens from a full-rank export, through its own ONNX file', async () => {
    const json = await generateJson([fullDir, '--prompt', prompt, '--max-new-tokens', String(STEPS)]);
    expect(json.prompts[0].model.ids).toEqual(expectedIds);
  });

  it('--compare reports divergence, identical share and a KL equal to an independent forward', async () => {
    const json = await generateJson([
      halfDir,
      '--compare',
      STORIES_DIR,
      '--prompt',
      prompt,
      '--max-new-tokens',
      String(STEPS),
    ]);
    const r = json.prompts[0];
    const own = r.model.ids;
    const ref = r.compare!.ids;
    expect(ref).toEqual(expectedIds);
    // half the cache in float32: 640 B per token
    expect(r.model.kv_bytes_per_token).toBe(640);
    let first: number | null = null;
    let same = 0;
    for (let i = 0; i < ref.length; i++) {
      if (own[i] === ref[i]) same++;
      else first ??= i;
    }
    expect(r.comparison!.first_divergence).toBe(first);
    expect(r.comparison!.identical_share).toBeCloseTo(same / ref.length, 12);
    expect(r.comparison!.kl_positions).toBe(STEPS);

    // KL(original ‖ compressed) along the original's continuation, from the layer-by-layer runtime
    const tokenizer = await loadTokenizer(STORIES_DIR);
    const promptIds = Array.from(tokenizer.encode(prompt));
    const seq = Int32Array.from([...promptIds, ...ref.slice(0, -1)]);
    const engine = await Engine.create();
    const model = await openModel(STORIES_DIR);
    try {
      const [a] = (await forwardSequences(new ModelRunner(engine, model), [seq], { logits: 'all' })).logits!;
      const [b] = (
        await forwardSequences(new ModelRunner(engine, withCompression(model, halfPlan.layers)), [seq], {
          logits: 'all',
        })
      ).logits!;
      const V = model.spec.vocabSize;
      let sum = 0;
      for (let t = promptIds.length - 1; t < seq.length; t++) {
        const p = softmax(a.subarray(t * V, (t + 1) * V));
        const q = softmax(b.subarray(t * V, (t + 1) * V));
        for (let i = 0; i < V; i++) if (p[i] > 0) sum += p[i] * Math.log(p[i] / q[i]);
      }
      const kl = sum / STEPS;
      expect(kl).toBeGreaterThan(0);
      expect(Math.abs(r.comparison!.mean_kl - kl) / kl).toBeLessThan(1e-3);
    } finally {
      await model.close();
      await engine.release();
    }

    const text = await runCli([
      'generate',
      halfDir,
      '--compare',
      STORIES_DIR,
      '--prompt',
      prompt,
      '--max-new-tokens',
      '16',
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/── compared with stories260K-llama ──/);
    expect(text.stdout).toMatch(/first divergence/);
    expect(text.stdout).toMatch(/mean KL\s+[\d.]+e[-+]\d+ nats/);
  });

  it('--prompts reports over many prompts, from lines or JSON lines', async () => {
    const lines = path.join(tmp.dir, 'prompts.txt');
    fs.writeFileSync(lines, 'Once upon a time\n\nThe little dog\nTom and Sue\n');
    const jsonl = path.join(tmp.dir, 'prompts.jsonl');
    fs.writeFileSync(
      jsonl,
      ['Once upon a time', 'The little dog', 'Tom and Sue']
        .map((p) => JSON.stringify({ prompt: p }))
        .join('\n'),
    );
    const a = await generateJson([
      halfDir,
      '--compare',
      STORIES_DIR,
      '--prompts',
      lines,
      '--max-new-tokens',
      '24',
    ]);
    const b = await generateJson([
      halfDir,
      '--compare',
      STORIES_DIR,
      '--prompts',
      jsonl,
      '--max-new-tokens',
      '24',
    ]);
    expect(a.prompts.map((p) => p.prompt)).toEqual(['Once upon a time', 'The little dog', 'Tom and Sue']);
    // timings differ run to run; everything computed from the tokens must not
    const tokens = (r: JsonResult) => r.prompts.map((p) => [p.model.ids, p.compare!.ids, p.comparison]);
    expect(tokens(b)).toEqual(tokens(a));
    const s = a.summary!;
    expect(s.first_divergences).toEqual(a.prompts.map((p) => p.comparison!.first_divergence));
    const mean = a.prompts.reduce((x, p) => x + p.comparison!.identical_share, 0) / 3;
    expect(s.mean_identical_share).toBeCloseTo(mean, 12);
  });

  it('sampling: top-k 1 and a tiny top-p are greedy; a seed repeats; temperature changes the text', async () => {
    const args = [STORIES_DIR, '--prompt', 'Once upon a time', '--max-new-tokens', '32'];
    const greedy = (await generateJson(args)).prompts[0].model.ids;
    const topK1 = (await generateJson([...args, '--temperature', '1', '--top-k', '1', '--seed', '5']))
      .prompts[0].model.ids;
    const topP = (await generateJson([...args, '--temperature', '1', '--top-p', '1e-9', '--seed', '5']))
      .prompts[0].model.ids;
    expect(topK1).toEqual(greedy);
    expect(topP).toEqual(greedy);
    const hot = [...args, '--temperature', '1.5', '--seed', '7'];
    const s1 = (await generateJson(hot)).prompts[0].model.ids;
    const s2 = (await generateJson(hot)).prompts[0].model.ids;
    expect(s2).toEqual(s1);
    expect(s1).not.toEqual(greedy);
  });

  it.each([
    ['an empty prompt', [STORIES_DIR, '--prompt', '   '], /the prompt is empty/],
    [
      'a prompt longer than the context',
      [STORIES_DIR, '--prompt', 'Once upon a time '.repeat(200)],
      /the prompt is \d+ tokens, and the model's context is 512/,
    ],
    [
      '--max-new-tokens 0',
      [STORIES_DIR, '--prompt', 'Hi', '--max-new-tokens', '0'],
      /--max-new-tokens must be an integer ≥ 1, got "0"/,
    ],
    ['no prompt', [STORIES_DIR], /give exactly one of --prompt, --prompt-file or --prompts/],
    [
      'a temperature that is not a number',
      [STORIES_DIR, '--prompt', 'Hi', '--temperature', 'hot'],
      /--temperature must be a number/,
    ],
    [
      'a top-p above 1',
      [STORIES_DIR, '--prompt', 'Hi', '--temperature', '1', '--top-p', '2'],
      /top-p must be a number in \(0, 1\]/,
    ],
  ])('refuses %s in one line (exit 2)', async (_what, args, message) => {
    const r = await runCli(['generate', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses an export without its ONNX decoder, naming the folder', async () => {
    const r = await runCli(['generate', noOnnxDir, '--prompt', 'Hi']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(noOnnxDir);
    expect(r.stderr).toMatch(/has no onnx\/model\.onnx/);
  });

  it('refuses a prompts file with a broken line, naming the file and the line', async () => {
    const bad = path.join(tmp.dir, 'bad.jsonl');
    fs.writeFileSync(bad, '{"prompt": "ok"}\n{"text": "no prompt"}\n');
    const r = await runCli(['generate', STORIES_DIR, '--prompts', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /bad\.jsonl.*line 2 has no "prompt" string|line 2 has no "prompt" string.*bad\.jsonl/,
    );
  });
});

function softmax(v: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of v) max = Math.max(max, x);
  const e = Float64Array.from(v, (x) => Math.exp(x - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}
