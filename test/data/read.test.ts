import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { parquetMetadata } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { ColumnSource } from 'hyparquet-writer';
import { RankwiseError } from '../../main/core/errors.ts';
import { readTextSource, SUPPORTED_EXTENSIONS } from '../../main/data/read.ts';
import { tempDir } from '../helpers/paths.ts';

const records = [
  'Once upon a time, there was a little dog named Spot.',
  'Spot liked to run.\n\nHe ran to the park, and back again.',
  'Unicode survives: “quotes”, é, 😀 and a tab\there.',
  'The end.',
];
const expected = records.join('\n\n');

const tmp = tempDir();
afterAll(tmp.cleanup);

/** Write `content` to a fresh file in the temp folder and return its path. */
function write(name: string, content: string | Uint8Array): string {
  const file = path.join(tmp.dir, name);
  fs.writeFileSync(file, content);
  return file;
}

function parquet(columns: ColumnSource[], extra: { rowGroupSize?: number; codec?: 'GZIP' } = {}): Uint8Array {
  const compressors = { GZIP: (input: Uint8Array) => zlib.gzipSync(input) };
  return new Uint8Array(parquetWriteBuffer({ columnData: columns, compressors, ...extra }));
}

async function expectBadInput(file: string, fragment: string | RegExp, opts = {}): Promise<RankwiseError> {
  const error = await readTextSource(file, opts).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RankwiseError);
  const e = error as RankwiseError;
  expect(e.kind).toBe('bad-input');
  expect(e.file).toBe(file);
  expect(e.message).toMatch(fragment);
  return e;
}

describe('every format yields the same text for the same records', () => {
  const jsonl = records.map((text, i) => JSON.stringify({ id: i, text })).join('\n') + '\n';
  const jsonObjects = JSON.stringify(records.map((text) => ({ text, source: 'test' })));
  const jsonStrings = JSON.stringify(records);
  const sources: Record<string, string | Uint8Array> = {
    'plain.txt': expected,
    'records.jsonl': jsonl,
    'objects.json': jsonObjects,
    'strings.json': jsonStrings,
    'single.json': JSON.stringify({ text: expected }),
    'plain.txt.gz': zlib.gzipSync(expected),
    'records.jsonl.gz': zlib.gzipSync(jsonl),
    'objects.json.gz': zlib.gzipSync(jsonObjects),
    'UPPER.TXT': expected,
    // Two rows per row group: four rows make two groups, read back in order.
    'rows.parquet': parquet(
      [
        { name: 'id', data: Int32Array.from(records.keys()), type: 'INT32' },
        { name: 'text', data: records, type: 'STRING' },
      ],
      { rowGroupSize: 2 },
    ),
    'gzip-pages.parquet': parquet([{ name: 'text', data: records, type: 'STRING' }], { codec: 'GZIP' }),
  };

  for (const [name, content] of Object.entries(sources)) {
    it(name, async () => {
      expect(await readTextSource(write(name, content))).toBe(expected);
    });
  }

  it('wrote the parquet fixture as two row groups', () => {
    const bytes = sources['rows.parquet'] as Uint8Array;
    expect(parquetMetadata(bytes.buffer as ArrayBuffer).row_groups.length).toBe(2);
  });

  it('reads a parquet text column stored as plain bytes', async () => {
    const bytes = records.map((r) => new TextEncoder().encode(r));
    const file = write('bytes.parquet', parquet([{ name: 'text', data: bytes, type: 'BYTE_ARRAY' }]));
    expect(await readTextSource(file)).toBe(expected);
  });
});

describe('normalisation', () => {
  it('turns CRLF into LF and drops a UTF-8 byte-order mark', async () => {
    const file = write('windows.txt', '\ufeff' + expected.replace(/\n/g, '\r\n'));
    expect(await readTextSource(file)).toBe(expected);
  });

  it('skips blank JSONL lines and whitespace-only records', async () => {
    const lines = ['', JSON.stringify({ text: records[0] }), '   ', JSON.stringify({ text: ' \n ' })];
    lines.push(JSON.stringify({ text: records[1] }) + '\r', '');
    const file = write('gaps.jsonl', lines.join('\n'));
    expect(await readTextSource(file)).toBe(records.slice(0, 2).join('\n\n'));
  });

  it('keeps a text file verbatim, surrounding whitespace included', async () => {
    const file = write('verbatim.txt', '  indented\n\n');
    expect(await readTextSource(file)).toBe('  indented\n\n');
  });
});

describe('errors', () => {
  it('a missing file', async () => {
    await expectBadInput(path.join(tmp.dir, 'nope.txt'), /does not exist/);
  });

  it('a directory', async () => {
    const dir = path.join(tmp.dir, 'folder.txt');
    fs.mkdirSync(dir);
    await expectBadInput(dir, /is a directory/);
  });

  it('an unsupported extension, listing the supported ones', async () => {
    const e = await expectBadInput(write('data.csv', 'a,b\n'), /unsupported extension/);
    for (const ext of SUPPORTED_EXTENSIONS) expect(e.message).toContain(ext);
  });

  it('an empty or whitespace-only text', async () => {
    await expectBadInput(write('empty.txt', ''), /has no text/);
    await expectBadInput(write('blank.txt', ' \n\t\n'), /has no text/);
    await expectBadInput(write('blank.jsonl', '{"text": ""}\n{"text": "  "}\n'), /has no text: every record/);
    await expectBadInput(write('blank.json', '[]'), /has no text: every record/);
  });

  it('a binary file (NUL bytes)', async () => {
    await expectBadInput(write('binary.txt', new Uint8Array([0x48, 0x69, 0x00, 0x01, 0x02])), /NUL bytes/);
  });

  it('UTF-16 text', async () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Hello', 'utf16le')]);
    await expectBadInput(write('utf16.txt', utf16), /is UTF-16 text; re-save it as UTF-8/);
  });

  it('text that is not UTF-8', async () => {
    // "café" in Latin-1: 0xE9 alone is not valid UTF-8.
    await expectBadInput(write('latin1.txt', new Uint8Array([0x63, 0x61, 0x66, 0xe9])), /not valid UTF-8/);
  });

  it('a JSONL line that is not JSON, with its line number', async () => {
    const file = write('bad-line.jsonl', '{"text": "a"}\n\n{"text": "b"\n');
    await expectBadInput(file, /line 3 is not valid JSON/);
  });

  it('a JSONL line without a string text field, with its line number and fields', async () => {
    await expectBadInput(
      write('no-text.jsonl', '{"text": "a"}\n{"content": "b", "id": 2}\n'),
      /line 2 has no string "text" field \(its fields: content, id\)/,
    );
    await expectBadInput(write('number-text.jsonl', '{"text": 5}\n'), /line 1 has no string "text" field/);
    await expectBadInput(
      write('array-line.jsonl', '["a"]\n'),
      /line 1 has no string "text" field \(found an array\)/,
    );
  });

  it('JSON in a shape it does not read', async () => {
    await expectBadInput(
      write('shape.json', '{"data": ["a"]}'),
      /has no text in a shape.*\(its fields: data\)/,
    );
    await expectBadInput(
      write('item.json', '["a", {"body": "b"}]'),
      /item \[1\] is neither a string nor an object/,
    );
  });

  it('JSON Lines saved as .json, with a hint', async () => {
    await expectBadInput(write('lines.json', '{"text": "a"}\n{"text": "b"}\n'), /rename it to \.jsonl/);
  });

  it('a corrupt .gz', async () => {
    await expectBadInput(write('not-gzip.txt.gz', 'plain text, not compressed'), /is not a valid gzip file/);
    const truncated = zlib.gzipSync(expected.repeat(20)).subarray(0, 40);
    await expectBadInput(write('truncated.jsonl.gz', truncated), /is not a valid gzip file/);
  });

  it('a corrupt parquet file', async () => {
    await expectBadInput(
      write('garbage.parquet', 'this is not parquet at all'),
      /is not a valid parquet file/,
    );
    const good = parquet([{ name: 'text', data: records, type: 'STRING' }]);
    // Keep the footer but scramble the column data in front of it.
    const scrambled = good.slice();
    for (let i = 4; i < 60; i++) scrambled[i] = 0xff;
    await expectBadInput(write('scrambled.parquet', scrambled), /is a corrupt parquet file/);
  });

  it('a parquet file without a text column, listing its columns', async () => {
    const file = write(
      'columns.parquet',
      parquet([
        { name: 'story', data: records, type: 'STRING' },
        { name: 'id', data: Int32Array.from(records.keys()), type: 'INT32' },
      ]),
    );
    await expectBadInput(file, /has no "text" column \(its columns: story, id\)/);
  });

  it('a parquet row without text', async () => {
    const file = write(
      'null-row.parquet',
      parquet([{ name: 'text', data: ['a', null, 'c'], type: 'STRING' }]),
    );
    await expectBadInput(file, /row 1 of the "text" column is null/);
  });

  it('a file over the size cap', async () => {
    await expectBadInput(write('big.txt', expected), /is too large \(.*; the limit is 16 B\)/, {
      maxBytes: 16,
    });
  });

  it('a .gz that decompresses past the size cap', async () => {
    const file = write('bomb.txt.gz', zlib.gzipSync('x'.repeat(100_000)));
    await expectBadInput(file, /decompresses to more than 1\.00 KiB/, { maxBytes: 1024 });
  });
});
