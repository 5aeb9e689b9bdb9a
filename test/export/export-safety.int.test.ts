/**
 * The export's promises beyond numerics: the files follow the formats' own rules, nothing reaches <out>
 * unless it was verified, and a killed, failed or cancelled export leaves an earlier export intact.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RankwiseError } from '../../main/core/errors.ts';
import { exportPlan, REPORT_HTML, REPORT_JSON } from '../../main/export/export.ts';
import { ONNX_FILE } from '../../main/export/onnx-files.ts';
import { readPlanFile, writePlanFile } from '../../main/export/plan-file.ts';
import { compressToPlan, type CompressionPlan } from '../../main/jobs/compress.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import { runCli } from '../helpers/cli.ts';
import { rewriteTensors } from '../helpers/checkpoint-edit.ts';
import { REPO_ROOT, STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { tinyLlama } from '../helpers/recipes.ts';

const tmp = tempDir();
const at = (name: string) => path.join(tmp.dir, name);
let plan: CompressionPlan;
const PLAN_FILE = () => at('stories.plan.safetensors');

beforeAll(async () => {
  ({ plan } = await compressToPlan({
    modelDir: STORIES_DIR,
    calib: TINYSTORIES_TEXT,
    eval: TINYSTORIES_TEXT,
    method: 'kqsvd',
    ranks: { k: 4, v: 6 },
    keySpace: 'post-rope',
    window: 128,
    calibWindows: 4,
    evalWindows: 2,
  }));
  await writePlanFile(PLAN_FILE(), plan);
});
afterAll(() => tmp.cleanup());

/** Rankwise's own temporary folders and swap journals beside <out>. */
function leftovers(out: string): string[] {
  const base = path.basename(out);
  return fs.readdirSync(path.dirname(out)).filter((n) => n.startsWith(`${base}.rankwise-`));
}

/** File name → sha256 of every file in a folder and its subfolders (onnx/): what "intact" means. */
function fingerprint(dir: string): Record<string, string> {
  return Object.fromEntries(
    (fs.readdirSync(dir, { recursive: true }) as string[])
      .filter((f) => fs.statSync(path.join(dir, f)).isFile())
      .sort()
      .map((f) => [
        f,
        createHash('sha256')
          .update(fs.readFileSync(path.join(dir, f)))
          .digest('hex'),
      ]),
  );
}

/** Checks a safetensors file against the format's rules, reading the raw bytes (not our reader). */
function checkSafetensorsRules(file: string): Record<string, { dtype: string; shape: number[] }> {
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  expect(n % 8).toBe(0);
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  expect(bytes[8]).toBe('{'.charCodeAt(0));
  const meta = header.__metadata__ as Record<string, unknown>;
  for (const v of Object.values(meta)) expect(typeof v).toBe('string');
  expect(meta).toMatchObject({ format: 'pt', rankwise: '1' });
  const size: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8 };
  const entries = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([name, t]) => ({
      name,
      ...(t as { dtype: string; shape: number[]; data_offsets: [number, number] }),
    }))
    .sort((a, b) => a.data_offsets[0] - b.data_offsets[0]);
  let offset = 0;
  for (const t of entries) {
    // contiguous, no holes, no overlaps, each tensor naturally aligned, its bytes matching its shape
    expect(t.data_offsets[0]).toBe(offset);
    expect((8 + n + offset) % size[t.dtype]).toBe(0);
    expect(t.data_offsets[1] - t.data_offsets[0]).toBe(t.shape.reduce((a, b) => a * b, 1) * size[t.dtype]);
    offset = t.data_offsets[1];
  }
  expect(8 + n + offset).toBe(bytes.length);
  return Object.fromEntries(entries.map((t) => [t.name, { dtype: t.dtype, shape: t.shape }]));
}

describe('exported files', () => {
  const OUT = () => at('single');
  beforeAll(async () => {
    await exportPlan(plan, { out: OUT() });
  });

  it('model.safetensors follows the format rules and holds the layout of ARCHITECTURE.md §7', () => {
    const tensors = checkSafetensorsRules(path.join(OUT(), 'model.safetensors'));
    const p = 'model.layers.0.self_attn.';
    // post-RoPE: k_proj whole, A and B as [H_kv, d, r_k]; values folded to r_v = 6 per head
    expect(tensors[`${p}k_proj.weight`].shape).toEqual([4 * 8, 64]);
    expect(tensors[`${p}k_basis`].shape).toEqual([4, 8, 4]);
    expect(tensors[`${p}q_basis`].shape).toEqual([4, 8, 4]);
    expect(tensors[`${p}v_proj.weight`].shape).toEqual([4 * 6, 64]);
    expect(tensors[`${p}o_proj.weight`].shape).toEqual([64, 8 * 6]);
  });

  it('config.json is the original plus the kv_compression block; tokenizer files are copied', async () => {
    const original = JSON.parse(fs.readFileSync(path.join(STORIES_DIR, 'config.json'), 'utf8'));
    const written = JSON.parse(fs.readFileSync(path.join(OUT(), 'config.json'), 'utf8'));
    const { kv_compression: block, ...rest } = written;
    expect(rest).toEqual(original);
    expect(written.quantization_config).toBeUndefined();
    expect(block).toMatchObject({ format: 'rankwise', version: 1, method: 'kqsvd' });
    expect(block.layers).toHaveLength(5);
    for (const l of block.layers) expect(l).toEqual({ k_rank: 4, v_rank: 6, key_space: 'post-rope' });
    const sha = createHash('sha256').update(fs.readFileSync(TINYSTORIES_TEXT)).digest('hex');
    expect(block.calibration).toMatchObject({ sequences: 4, seq_len: 128, seed: 0, sha256: sha });
    expect(fs.readFileSync(path.join(OUT(), 'tokenizer.json'))).toEqual(
      fs.readFileSync(path.join(STORIES_DIR, 'tokenizer.json')),
    );
    for (const f of [ONNX_FILE, REPORT_JSON, REPORT_HTML])
      expect(fs.existsSync(path.join(OUT(), f))).toBe(true);
    // the decoder sits where Optimum and transformers.js look for it, and nowhere else
    expect(fs.existsSync(path.join(OUT(), 'model.onnx'))).toBe(false);
    const report = JSON.parse(fs.readFileSync(path.join(OUT(), REPORT_JSON), 'utf8'));
    expect(report.export.verification.passed).toBe(true);
    const listed = (report.export.files as { name: string; bytes: number }[]).map((f) => f.name);
    expect(listed).toContain(ONNX_FILE);
    // the report lists exactly the files beside it (but itself), and the temporary folder's marker is gone
    const onDisk = (fs.readdirSync(OUT(), { recursive: true }) as string[])
      .filter((f) => fs.statSync(path.join(OUT(), f)).isFile() && f !== REPORT_JSON && f !== REPORT_HTML)
      .sort();
    expect([...listed].sort()).toEqual(onDisk);
    expect(onDisk).not.toContain('.rankwise-partial');
    expect(report.export.files.find((f: { name: string }) => f.name === ONNX_FILE).bytes).toBe(
      fs.statSync(path.join(OUT(), ONNX_FILE)).size,
    );
    expect(report.memory.kvBytesPerToken).toEqual({ original: 1280, compressed: 5 * 4 * (4 + 6) * 4 });
  });

  it('inspect and eval read the folder and report its compressed cache', async () => {
    const info = await runCli(['inspect', OUT(), '--json']);
    expect(info.code).toBe(0);
    const card = JSON.parse(info.stdout);
    expect(card.kv_bytes_per_token).toBe(800);
    expect(card.kv_compression.original_kv_bytes_per_token).toBe(1280);
    const text = await runCli(['inspect', OUT()]);
    expect(text.stdout).toMatch(/compressed by Rankwise from 1,280 B \(62\.5 % kept\)/);
    const ev = await runCli([
      'eval',
      OUT(),
      '--data',
      TINYSTORIES_TEXT,
      '--window',
      '128',
      '--max-windows',
      '2',
      '--json',
    ]);
    expect(ev.code).toBe(0);
    const evaluated = JSON.parse(ev.stdout);
    expect(evaluated.perplexity).toBeCloseTo(plan.report.perplexity.compressed, 3);
    expect(evaluated.kv_bytes_per_token).toBe(800);
    expect(evaluated.kv_compression.original_kv_bytes_per_token).toBe(1280);
  });

  it('shards past the size limit, with an index, each shard following the rules', async () => {
    const out = at('sharded');
    const r = await exportPlan(plan, { out, maxShardBytes: 300_000, onnx: false });
    expect(r.export.verification.passed).toBe(true);
    const shards = fs.readdirSync(out).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    expect(shards.length).toBeGreaterThan(1);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'model.safetensors.index.json'), 'utf8'));
    const names = new Set<string>();
    for (const s of shards)
      for (const name of Object.keys(checkSafetensorsRules(path.join(out, s)))) names.add(name);
    expect(new Set(Object.keys(index.weight_map))).toEqual(names);
  });

  it('a plan file round-trips exactly and `rankwise export` exports it', async () => {
    const back = await readPlanFile(PLAN_FILE());
    expect(back.layers).toEqual(plan.layers);
    expect(back.report).toEqual(plan.report);
    const out = at('from-plan');
    const r = await runCli(['export', PLAN_FILE(), '--out', out, '--no-onnx', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).verification.passed).toBe(true);
    expect(fs.existsSync(path.join(out, ONNX_FILE))).toBe(false);
  });
});

describe('nothing unverified reaches <out>', () => {
  it('refuses an existing <out> without --force, before any work', async () => {
    const out = at('taken');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'keep.txt'), 'mine');
    await expect(exportPlan(plan, { out })).rejects.toMatchObject({ kind: 'bad-input', file: out });
    const cli = await runCli([
      'compress',
      STORIES_DIR,
      '--calib',
      TINYSTORIES_TEXT,
      '--eval',
      TINYSTORIES_TEXT,
      '--method',
      'ksvd',
      '--k-rank',
      '4',
      '--v-rank',
      '4',
      '--out',
      out,
    ]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/already exists; pass --force/);
    expect(fs.readdirSync(out)).toEqual(['keep.txt']);
  });

  it('a failed verification leaves no folder and the earlier export intact, and says why', async () => {
    const out = at('guarded');
    await exportPlan(plan, { out, onnx: false });
    const before = fingerprint(out);
    const error = await exportPlan(plan, {
      out,
      force: true,
      onnx: false,
      // a writer bug, simulated: one value of one projection is off
      beforeVerify: (dir) =>
        rewriteTensors(dir, (name, data) => {
          if (name === 'model.layers.2.self_attn.v_proj.weight') data[3] += 0.5;
        }),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RankwiseError);
    expect((error as Error).message).toMatch(
      /verification of guarded failed: the reloaded checkpoint's logits differ/,
    );
    expect(fingerprint(out)).toEqual(before);
    expect(leftovers(out)).toEqual([]);
  });

  it("an export to X never touches a user's own X.partial folder", async () => {
    const out = at('beside-user-folder');
    fs.mkdirSync(`${out}.partial`);
    fs.writeFileSync(path.join(`${out}.partial`, 'notes.txt'), 'precious');
    const r = await exportPlan(plan, { out, onnx: false });
    expect(r.export.verification.passed).toBe(true);
    expect(fs.readFileSync(path.join(`${out}.partial`, 'notes.txt'), 'utf8')).toBe('precious');
    expect(leftovers(out)).toEqual([]);
  });

  it('a cancelled export leaves nothing behind', async () => {
    const out = at('cancelled');
    const ac = new AbortController();
    const error = await exportPlan(plan, {
      out,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.stage === 'verify checkpoint') ac.abort();
      },
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'cancelled' });
    expect(fs.existsSync(out)).toBe(false);
    expect(leftovers(out)).toEqual([]);
  });

  it.each([
    ['over an earlier export', true],
    ['to a new folder', false],
  ])(
    'SIGKILL mid-export %s: no folder at <out> but the earlier one, intact; the next run recovers',
    async (_, earlier) => {
      const out = at(earlier ? 'killed-over' : 'killed-new');
      if (earlier) await exportPlan(plan, { out, onnx: false });
      const before = earlier ? fingerprint(out) : null;
      const child = spawn(
        process.execPath,
        [
          path.join(REPO_ROOT, 'bin', 'rankwise.mjs'),
          'export',
          PLAN_FILE(),
          '--out',
          out,
          '--force',
          '--quiet',
        ],
        {
          stdio: 'ignore',
        },
      );
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on('exit', (_code, signal) => resolve(signal)),
      );
      // kill once the partial folder holds weights: mid-write or mid-verification
      const partialWeights = () =>
        leftovers(out)
          .map((n) => path.join(path.dirname(out), n, 'model.safetensors'))
          .find((f) => fs.existsSync(f));
      const deadline = Date.now() + 60_000;
      while (!partialWeights() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(partialWeights()).toBeDefined();
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      if (before) expect(fingerprint(out)).toEqual(before);
      else expect(fs.existsSync(out)).toBe(false);
      // a later export clears the stale partial folder and completes
      const r = await exportPlan(plan, { out, force: true, onnx: false });
      expect(r.export.verification.passed).toBe(true);
      expect(leftovers(out)).toEqual([]);
    },
  );
});

describe('half-precision checkpoints', () => {
  it('an F16 model exports in F16 and verifies against its weights rounded to F16', async () => {
    const dir = at('f16');
    await writeSyntheticModel(dir, tinyLlama(41, { dtype: 'F16' }));
    const text = at('excerpt.txt');
    fs.writeFileSync(text, fs.readFileSync(TINYSTORIES_TEXT, 'utf8').slice(0, 30_000));
    const { plan: p } = await compressToPlan({
      modelDir: dir,
      calib: text,
      eval: text,
      method: 'ksvd',
      ranks: { k: 4, v: 4 },
      window: 64,
      calibWindows: 4,
      evalWindows: 2,
    });
    const out = at('f16-out');
    const r = await exportPlan(p, { out });
    expect(r.export.verification.passed).toBe(true);
    const tensors = checkSafetensorsRules(path.join(out, 'model.safetensors'));
    for (const t of Object.values(tensors)) expect(t.dtype).toBe('F16');
  });
});
