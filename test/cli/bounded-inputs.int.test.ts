/**
 * Audit #13 through the real binary, as child processes so time and memory can be measured: hostile
 * inputs are refused (exit 2, one line naming the file) quickly and in bounded memory, and the exit code
 * never claims an internal failure (1) for a bad input nor success (0) for a non-finite perplexity.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';

import { rewriteTensors } from '../helpers/checkpoint-edit.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { messageLines, runRankwise, unprivilegedUser, type ChildResult } from '../fuzz/child.ts';

const tmp = tempDir('rankwise-bounded-');
fs.chmodSync(tmp.dir, 0o755);
afterAll(() => tmp.cleanup());
// compress runs as a job of the engine: its job folders and cache go here, not into the user's home
process.env.RANKWISE_HOME = path.join(tmp.dir, 'rankwise-home');

let n = 0;
function stories(): string {
  const dir = path.join(tmp.dir, `s${n++}`);
  fs.cpSync(STORIES_DIR, dir, { recursive: true });
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o755);
  return dir;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(c);
  fs.writeFileSync(file, JSON.stringify(c));
}

/** 20 KB of the excerpt: enough for a window of 64. */
const SMALL_TEXT = path.join(tmp.dir, 'small.txt');
fs.writeFileSync(SMALL_TEXT, fs.readFileSync(TINYSTORIES_TEXT).subarray(0, 20_000));

const EVAL = (dir: string, data = SMALL_TEXT, ...more: string[]) => [
  'eval',
  dir,
  '--data',
  data,
  '--max-windows',
  '1',
  '--window',
  '64',
  ...more,
];

/**
 * Exit 2, one line on stderr that matches `pattern`, no stack trace. Progress lines ("[eval] layer 2 3/7,
 * ETA 0.1 s"), which the CLI writes to stderr as it works, are not messages: a weight refused as its layer
 * loads comes after the layers before it.
 */
function expectRefused(r: ChildResult, pattern: RegExp): void {
  expect(r.timedOut, `timed out after ${r.wallMs} ms`).toBe(false);
  expect(r.stderr).not.toContain('    at ');
  const lines = messageLines(r.stderr);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.code, r.stderr).toBe(2);
}

describe('bounded time and memory', () => {
  it('refuses num_hidden_layers = 2^53 − 1 in seconds, naming config.json', async () => {
    const dir = stories();
    editConfig(dir, (c) => (c.num_hidden_layers = 9007199254740991));
    const r = await runRankwise(EVAL(dir), { timeoutMs: 30_000 });
    expectRefused(r, /config\.json.*num_hidden_layers/);
    expect(r.wallMs).toBeLessThan(20_000);
    if (r.peakRssKb !== null) expect(r.peakRssKb).toBeLessThan(1024 * 1024);
  });

  it('evaluates --max-windows 2 of a 120 MiB .txt.gz reading only its start', async () => {
    const file = path.join(tmp.dir, 'big.txt.gz');
    const text = fs.readFileSync(TINYSTORIES_TEXT);
    const copies = Math.ceil((120 * 1024 * 1024) / text.length);
    const gz = zlib.createGzip({ level: 1 });
    const out = fs.createWriteStream(file);
    const done = new Promise<void>((resolve, reject) =>
      out.on('finish', () => resolve()).on('error', reject),
    );
    gz.pipe(out);
    for (let i = 0; i < copies; i++) {
      if (!gz.write(text)) await new Promise((r) => gz.once('drain', r));
    }
    gz.end();
    await done;
    const r = await runRankwise(
      ['eval', STORIES_DIR, '--data', file, '--max-windows', '2', '--window', '64', '--json'],
      { timeoutMs: 40_000 },
    );
    expect(r.timedOut, `timed out after ${r.wallMs} ms`).toBe(false);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ windows: 2, tokens: 126 });
    expect(r.wallMs).toBeLessThan(20_000);
    if (r.peakRssKb !== null) expect(r.peakRssKb).toBeLessThan(1024 * 1024);
  });
});

describe('non-finite results are refused, naming the offending tensor or setting', () => {
  it('rms_norm_eps: -1', async () => {
    const dir = stories();
    editConfig(dir, (c) => (c.rms_norm_eps = -1));
    expectRefused(await runRankwise(EVAL(dir)), /config\.json.*rms_norm_eps/);
  });

  it('a NaN weight', async () => {
    const dir = stories();
    await rewriteTensors(dir, (name, data) => {
      if (name === 'model.layers.3.self_attn.v_proj.weight') data[5] = NaN;
    });
    expectRefused(
      await runRankwise(EVAL(dir)),
      /model\.safetensors: tensor "model\.layers\.3\.self_attn\.v_proj\.weight" holds NaN/,
    );
  });

  it('weights whose activations overflow float32', async () => {
    const dir = stories();
    await rewriteTensors(dir, (name, data) => {
      if (name === 'model.layers.1.mlp.down_proj.weight') data.fill(3e38);
    });
    expectRefused(await runRankwise(EVAL(dir)), /model\.safetensors: layer 1 .*(NaN|Inf)/);
  });
});

describe('bad input exits 2 (not 1), naming the file and the reason', () => {
  it('a tokenizer with ids beyond vocab_size (was an onnxruntime Gather error)', async () => {
    const dir = stories();
    const file = path.join(dir, 'tokenizer.json');
    const tok = JSON.parse(fs.readFileSync(file, 'utf8'));
    tok.added_tokens.push({ id: 700, content: '<extra>', special: true, normalized: false });
    fs.writeFileSync(file, JSON.stringify(tok));
    const data = path.join(tmp.dir, 'extra.txt');
    fs.writeFileSync(data, '<extra> ' + fs.readFileSync(SMALL_TEXT, 'utf8'));
    expectRefused(
      await runRankwise(EVAL(dir, data)),
      /tokenizer\.json: token id 700 .*vocab_size 512 in .*config\.json/,
    );
  });

  it('too few calibration tokens for KQ-SVD says so and names the calibration text (was the kernel\'s "regularise it first")', async () => {
    const r = await runRankwise([
      'compress',
      STORIES_DIR,
      '--calib',
      SMALL_TEXT,
      '--eval',
      SMALL_TEXT,
      '--method',
      'kqsvd',
      '--k-rank',
      '4',
      '--v-rank',
      '4',
      '--window',
      '8',
      '--calib-windows',
      '2',
      '--eval-windows',
      '1',
      '-q',
    ]);
    expectRefused(r, /KQ-SVD cannot fit layer \d+'s \w+ .* 8 calibration tokens .*--calib-windows/);
    expect(r.stderr).not.toMatch(/regularise/);
    expectRefused(
      r,
      new RegExp(`^rankwise compress: ${SMALL_TEXT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: KQ-SVD`),
    );
  });

  it('weights that overflow float32 during calibration are named like eval names them', async () => {
    const dir = stories();
    await rewriteTensors(dir, (name, data) => {
      if (name === 'model.layers.1.mlp.down_proj.weight') data.fill(3e38);
    });
    const r = await runRankwise([
      'compress',
      dir,
      '--calib',
      SMALL_TEXT,
      '--eval',
      SMALL_TEXT,
      '--method',
      'kqsvd',
      '--k-rank',
      '4',
      '--v-rank',
      '4',
      '--window',
      '64',
      '--calib-windows',
      '2',
      '--eval-windows',
      '1',
      '-q',
    ]);
    expectRefused(r, /model\.safetensors: layer 1 .*(NaN|Inf)/);
    expect(r.stderr).not.toMatch(/cholesky:|eigh:/);
  });

  it('a symbolic link loop as the model folder says so', async () => {
    const loop = path.join(tmp.dir, 'loop');
    fs.symlinkSync(loop, loop);
    expectRefused(await runRankwise(EVAL(loop)), /loop: .*symbolic link loop/);
  });

  describe('permissions (as an unprivileged user when the tests run as root)', () => {
    const user = unprivilegedUser(path.join(tmp.dir, 'home'));

    it('an unreadable model.safetensors.index.json', async () => {
      const dir = stories();
      const shard = 'model-00001-of-00001.safetensors';
      const buf = fs.readFileSync(path.join(dir, 'model.safetensors'));
      const header = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString('utf8'));
      fs.renameSync(path.join(dir, 'model.safetensors'), path.join(dir, shard));
      const index = path.join(dir, 'model.safetensors.index.json');
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      fs.writeFileSync(
        index,
        JSON.stringify({ weight_map: Object.fromEntries(names.map((k) => [k, shard])) }),
      );
      fs.chmodSync(index, 0o000);
      expectRefused(
        await runRankwise(EVAL(dir), { asUser: user }),
        /model\.safetensors\.index\.json: cannot be read \(permission denied\)/,
      );
    });

    it('a model folder that cannot be entered', async () => {
      const dir = stories();
      fs.chmodSync(dir, 0o600);
      expectRefused(await runRankwise(EVAL(dir), { asUser: user }), /permission denied/);
    });

    it('an unreadable config.json', async () => {
      const dir = stories();
      fs.chmodSync(path.join(dir, 'config.json'), 0o000);
      expectRefused(
        await runRankwise(EVAL(dir), { asUser: user }),
        /config\.json: cannot be read \(permission denied\)/,
      );
    });

    it('an unreadable data file', async () => {
      const data = path.join(tmp.dir, 'secret.txt');
      fs.copyFileSync(SMALL_TEXT, data);
      fs.chmodSync(data, 0o000);
      expectRefused(
        await runRankwise(EVAL(STORIES_DIR, data), { asUser: user }),
        /secret\.txt: cannot be read \(permission denied\)/,
      );
    });
  });
});
