import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { REPO_ROOT, STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-cli-');
afterAll(() => tmp.cleanup());

/** A copy of stories260K whose files a test may break. */
function storiesCopy(name: string): string {
  const dir = path.join(tmp.dir, name);
  fs.cpSync(STORIES_DIR, dir, { recursive: true });
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  return dir;
}

/** Rewrites the safetensors header of `dir` in place, keeping its byte length (padding with spaces). */
function editHeader(
  dir: string,
  edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void,
) {
  const file = path.join(dir, 'model.safetensors');
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  const text = JSON.stringify(header);
  if (text.length > n) throw new Error('edited header no longer fits');
  buf.write(text.padEnd(n, ' '), 8, 'utf8');
  fs.writeFileSync(file, buf);
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void) {
  const file = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(c);
  fs.writeFileSync(file, JSON.stringify(c));
}

function writeText(name: string, content: string | Buffer): string {
  const file = path.join(tmp.dir, name);
  fs.writeFileSync(file, content);
  return file;
}

describe('rankwise inspect', () => {
  it('prints the architecture card of stories260K', async () => {
    const r = await runCli(['inspect', STORIES_DIR]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/layers\s+5/);
    expect(r.stdout).toMatch(/8 query, 4 key\/value \(GQA/);
    expect(r.stdout).toMatch(/parameters\s+260,032/);
    expect(r.stdout).toMatch(/KV cache per token\s+1,280 B/);
  });

  it('--json gives the card as one JSON document with the cache at 4K, 32K and 128K', async () => {
    const r = await runCli(['inspect', STORIES_DIR, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      layers: 5,
      heads: 8,
      kv_heads: 4,
      head_dim: 8,
      rope: 10000,
      dtype: 'F32',
      parameters: 260_032,
    });
    // 2 (K, V) × 5 layers × 4 KV heads × 8 dims × 4 bytes
    expect(j.kv_bytes_per_token).toBe(1280);
    expect(j.kv_bytes_per_sequence).toEqual([
      { tokens: 4096, bytes: 4096 * 1280 },
      { tokens: 32768, bytes: 32768 * 1280 },
      { tokens: 131072, bytes: 131072 * 1280 },
    ]);
  });
});

describe('rankwise eval', () => {
  it('prints the perplexity of stories260K on the TinyStories excerpt', async () => {
    const r = await runCli(['eval', STORIES_DIR, '--data', TINYSTORIES_TEXT, '--max-windows', '8', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ window: 512, windows: 8, tokens: 8 * 511, device: 'cpu' });
    // The model's in-domain perplexity is about 4 (testdata README); a broken forward gives hundreds.
    expect(j.perplexity).toBeGreaterThan(3);
    expect(j.perplexity).toBeLessThan(5.5);
    expect(j.perplexity).toBeCloseTo(Math.exp(j.mean_nll), 10);
    expect(r.stderr).toMatch(/\[eval\] layer 5/);
  });

  it('prints a human-readable table without --json', async () => {
    const r = await runCli([
      'eval',
      STORIES_DIR,
      '--data',
      TINYSTORIES_TEXT,
      '--max-windows',
      '2',
      '--window',
      '64',
      '-q',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/perplexity\s+\d+\.\d{4}/);
    expect(r.stdout).toMatch(/2 × 64 tokens \(126 predicted\)/);
    expect(r.stderr).toBe('');
  });
});

/** [name, args builder, pattern the one-line message must match] — each must exit 2. */
const BAD_INPUTS: [string, () => string[], RegExp][] = [
  [
    'a missing model folder',
    () => ['inspect', path.join(tmp.dir, 'nope')],
    /nope: model folder does not exist/,
  ],
  [
    'a folder without config.json',
    () => ['inspect', fs.mkdtempSync(path.join(tmp.dir, 'empty-'))],
    /no config\.json/,
  ],
  [
    'a config without num_attention_heads',
    () => {
      const d = storiesCopy('no-heads');
      editConfig(d, (c) => delete c.num_attention_heads);
      return ['inspect', d];
    },
    /config\.json.*num_attention_heads/,
  ],
  [
    'an unsupported model_type',
    () => {
      const d = storiesCopy('falcon');
      editConfig(d, (c) => (c.model_type = 'falcon'));
      return ['inspect', d];
    },
    /falcon.*(llama|supported)/,
  ],
  [
    'a truncated safetensors file',
    () => {
      const d = storiesCopy('truncated');
      const f = path.join(d, 'model.safetensors');
      fs.truncateSync(f, fs.statSync(f).size - 1000);
      return ['inspect', d];
    },
    /model\.safetensors.*(truncated|end of the file|shorter)/i,
  ],
  [
    'a safetensors header over the size cap',
    () => {
      const d = storiesCopy('huge-header');
      const f = path.join(d, 'model.safetensors');
      const buf = fs.readFileSync(f);
      buf.writeBigUInt64LE(200_000_000n, 0);
      fs.writeFileSync(f, buf);
      return ['inspect', d];
    },
    /model\.safetensors.*header/i,
  ],
  [
    'overlapping tensor offsets',
    () => {
      const d = storiesCopy('overlap');
      editHeader(d, (h) => {
        // Slide the second tensor 4 bytes back into the first one's bytes.
        const byOffset = Object.keys(h)
          .filter((k) => k !== '__metadata__')
          .sort((x, y) => h[x].data_offsets[0] - h[y].data_offsets[0]);
        const b = byOffset[1];
        h[b].data_offsets = [h[b].data_offsets[0] - 4, h[b].data_offsets[1] - 4];
      });
      return ['inspect', d];
    },
    /model\.safetensors.*overlap/i,
  ],
  [
    'an unknown dtype',
    () => {
      const d = storiesCopy('dtype');
      editHeader(d, (h) => (h['model.norm.weight'].dtype = 'Q4'));
      return ['inspect', d];
    },
    /model\.safetensors.*Q4/,
  ],
  [
    'a missing data file',
    () => ['eval', STORIES_DIR, '--data', path.join(tmp.dir, 'missing.txt')],
    /missing\.txt/,
  ],
  [
    'an empty text',
    () => ['eval', STORIES_DIR, '--data', writeText('empty.txt', '  \n\n ')],
    /empty\.txt.*empty/i,
  ],
  [
    'a too-short text',
    () => ['eval', STORIES_DIR, '--data', writeText('short.txt', 'Once upon a time.')],
    /short\.txt.*tokens/,
  ],
  [
    'a binary file',
    () => ['eval', STORIES_DIR, '--data', writeText('blob.txt', Buffer.from([0, 1, 2, 255, 0, 7]))],
    /blob\.txt.*binary/i,
  ],
  [
    'a JSONL line without text',
    () => [
      'eval',
      STORIES_DIR,
      '--data',
      writeText('rows.jsonl', '{"text":"a story"}\n{"body":"no text"}\n'),
    ],
    /rows\.jsonl.*line 2/,
  ],
  [
    'a window beyond the context',
    () => ['eval', STORIES_DIR, '--data', TINYSTORIES_TEXT, '--window', '1024'],
    /context of 512/,
  ],
  ['an unknown option', () => ['eval', STORIES_DIR, '--bogus'], /bogus/],
  [
    'an unknown device',
    () => ['eval', STORIES_DIR, '--data', TINYSTORIES_TEXT, '--device', 'tpu'],
    /--device/,
  ],
  ['an unknown command', () => ['frobnicate'], /unknown command/],
];

describe('bad input exits with code 2 and a one-line message naming the file and the problem', () => {
  it.each(BAD_INPUTS)('%s', async (_name, args, pattern) => {
    const r = await runCli(args());
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
  });

  it('--json also puts the error on stdout as JSON', async () => {
    const r = await runCli(['inspect', path.join(tmp.dir, 'nope'), '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { kind: 'bad-input' } });
  });
});

describe('the rankwise binary', () => {
  it('runs as a separate process and returns the exit code', () => {
    const bin = path.join(REPO_ROOT, 'bin', 'rankwise.mjs');
    const ok = spawnSync(process.execPath, [bin, 'inspect', STORIES_DIR, '--json'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout).layers).toBe(5);
    const bad = spawnSync(process.execPath, [bin, 'inspect', path.join(tmp.dir, 'nope')], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
  });
});
