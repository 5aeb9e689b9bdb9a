/**
 * Audit #13, bounded reading: a text is read, decompressed and tokenized incrementally, and when only the
 * first windows are asked for, reading stops once they (plus a margin) exist. When all of the text is
 * needed the result is the same as reading it whole.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RankwiseError } from '../../main/core/errors.ts';
import { readTextChunks, readTextSource } from '../../main/data/read.ts';
import { loadWindows } from '../../main/data/windows.ts';
import { loadTokenizer, type TextTokenizer } from '../../main/model/tokenizer.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-stream-');
afterAll(tmp.cleanup);

function write(name: string, content: string | Uint8Array): string {
  const file = path.join(tmp.dir, name);
  fs.writeFileSync(file, content);
  return file;
}

async function chunksOf(file: string, chunkBytes: number): Promise<string[]> {
  const out: string[] = [];
  for await (const c of readTextChunks(file, { chunkBytes })) out.push(c);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<RankwiseError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(RankwiseError);
  expect((e as RankwiseError).kind).toBe('bad-input');
  return e as RankwiseError;
}

describe('readTextChunks joins to exactly what readTextSource returns', () => {
  const records = [
    'Once upon a time\r\nthere was a dog.\r',
    '  ',
    'é 😀 “quotes” and a tab\there.\r\n',
    'The end.',
  ];
  const jsonl = records.map((text) => JSON.stringify({ text })).join('\r\n') + '\n\n   \n';
  const text = '\ufeff' + records.join('\r\n\r\n');
  const cases: Record<string, string | Uint8Array> = {
    'crlf.txt': text,
    'crlf.txt.gz': zlib.gzipSync(text),
    'records.jsonl': jsonl,
    'records.jsonl.gz': zlib.gzipSync(jsonl),
    'records.json': JSON.stringify(records.map((t) => ({ text: t }))),
  };
  for (const [name, content] of Object.entries(cases)) {
    it(`${name}, in chunks of 1, 3, 7 and 64 KiB bytes`, async () => {
      const file = write(name, content);
      const whole = await readTextSource(file);
      for (const size of [1, 3, 7, 65536]) {
        expect((await chunksOf(file, size)).join('')).toBe(whole);
      }
    });
  }

  it('the excerpt, in 4 KiB chunks', async () => {
    const chunks = await chunksOf(TINYSTORIES_TEXT, 4096);
    expect(chunks.length).toBeGreaterThan(100);
    expect(chunks.join('')).toBe(await readTextSource(TINYSTORIES_TEXT));
  });
});

describe('loadWindows with maxCount stops reading once the windows exist', () => {
  let tok: TextTokenizer;
  let full512: Int32Array[];
  let full64: Int32Array[];
  beforeAll(async () => {
    tok = await loadTokenizer(STORIES_DIR);
    full512 = (await loadWindows(TINYSTORIES_TEXT, tok, { window: 512 })).windows;
    full64 = (await loadWindows(TINYSTORIES_TEXT, tok, { window: 64 })).windows;
  });

  it.each([
    [512, 1],
    [512, 8],
    [512, 60],
    [64, 1],
    [64, 2],
    [64, 333],
  ])('window %d, at most %d windows: the first windows of the whole text, exactly', async (window, max) => {
    const full = window === 512 ? full512 : full64;
    const got = await loadWindows(TINYSTORIES_TEXT, tok, { window, maxCount: max });
    expect(got.partial).toBe(true);
    expect(got.totalTokens).toBeLessThan(full.length * window);
    expect(got.windows).toEqual(full.slice(0, max));
  });

  it('an exact count under first sampling reads only what it needs, with the same windows', async () => {
    const got = await loadWindows(TINYSTORIES_TEXT, tok, { window: 256, count: 6 });
    const all = await loadWindows(TINYSTORIES_TEXT, tok, { window: 256 });
    expect(got.partial).toBe(true);
    expect(got.windows).toEqual(all.windows.slice(0, 6));
  });

  it('when the text has fewer windows than the most asked for, gives all of them as before', async () => {
    const file = write('short.txt', fs.readFileSync(TINYSTORIES_TEXT, 'utf8').slice(0, 30_000));
    const whole = await loadWindows(file, tok, { window: 64 });
    const got = await loadWindows(file, tok, { window: 64, maxCount: 100_000 });
    expect(got.partial).toBe(false);
    expect(got.totalTokens).toBe(whole.totalTokens);
    expect(got.windows).toEqual(whole.windows);
  });

  it('never decompresses past what it needs: a .gz damaged after its first MiB still gives 2 windows', async () => {
    const text = fs.readFileSync(TINYSTORIES_TEXT);
    const gz = zlib.gzipSync(Buffer.concat([text, text, text]));
    const damaged = Buffer.concat([gz.subarray(0, 1024 * 1024), Buffer.from('garbage, not deflate data')]);
    const file = write('damaged.txt.gz', damaged);
    const got = await loadWindows(file, tok, { window: 64, maxCount: 2 });
    expect(got.windows).toEqual(full64.slice(0, 2));
    // all of the text needed: the damage is found and reported as before
    const e = await rejection(loadWindows(file, tok, { window: 64 }));
    expect(e.message).toMatch(/is not a valid gzip file/);
    expect(e.file).toBe(file);
  });

  it('a .txt with invalid UTF-8 past its first MiB: refused only when that part is needed', async () => {
    const text = fs.readFileSync(TINYSTORIES_TEXT);
    const file = write('tail.txt', Buffer.concat([text, text, Buffer.from([0x41, 0xe9, 0x42])]));
    expect((await loadWindows(file, tok, { window: 64, maxCount: 3 })).windows).toEqual(full64.slice(0, 3));
    expect((await rejection(loadWindows(file, tok, { window: 64 }))).message).toMatch(/not valid UTF-8/);
  });

  it('a .jsonl with a bad line past its first MiB, likewise', async () => {
    const story = fs.readFileSync(TINYSTORIES_TEXT, 'utf8');
    const lines = (story + '\n' + story).split('\n').map((l) => JSON.stringify({ text: l }));
    lines.push('{"text": broken');
    const file = write('tail.jsonl', lines.join('\n'));
    expect((await loadWindows(file, tok, { window: 64, maxCount: 2 })).windows).toHaveLength(2);
    const e = await rejection(loadWindows(file, tok, { window: 64 }));
    expect(e.message).toMatch(new RegExp(`line ${lines.length} is not valid JSON`));
  });
});
