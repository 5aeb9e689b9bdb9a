/**
 * Reads a calibration or evaluation text file into one string, whatever its container.
 *
 * Formats (chosen by extension, case-insensitive):
 * - `.txt`: UTF-8 text, used as is.
 * - `.jsonl`: one JSON object per line with a string field `text`; blank lines are skipped.
 * - `.json`: an array of `{"text": …}` objects, an array of strings, or one object with a string `text`.
 * - `.txt.gz`, `.jsonl.gz`, `.json.gz`: the same, gzip-compressed.
 * - `.parquet`: the string column `text` (SNAPPY, GZIP, BROTLI or uncompressed pages).
 *
 * Records (lines, array items, rows) are joined with a blank line, "\n\n", which is how the TinyStories
 * excerpt separates its stories, so one record per story and the plain-text export read the same.
 * Whitespace-only records are dropped (they would only add blank lines). Windows line endings become
 * "\n" so a file tokenizes the same on every platform; a UTF-8 byte-order mark is dropped.
 */
import { readFile, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { badInput } from '../api/errors.ts';
import { jsonlRecords, jsonRecords } from './json-records.ts';
import { parquetRecords } from './parquet.ts';

export const SUPPORTED_EXTENSIONS = [
  '.txt',
  '.jsonl',
  '.json',
  '.txt.gz',
  '.jsonl.gz',
  '.json.gz',
  '.parquet',
];

/** Separator between records: the blank line that separates stories in the TinyStories excerpt. */
export const RECORD_SEPARATOR = '\n\n';

/**
 * Largest text accepted, in bytes (after decompression). Not a taste: a JavaScript string holds at most
 * ~512 Mi UTF-16 units (V8), and UTF-8 never has fewer bytes than UTF-16 units, so 500 MiB always fits.
 */
export const MAX_TEXT_BYTES = 500 * 1024 * 1024;

export interface ReadOptions {
  /** Override the size cap (tests use a tiny one). */
  maxBytes?: number;
}

type Format = 'txt' | 'jsonl' | 'json' | 'parquet';

const gunzip = promisify(zlib.gunzip);

export async function readTextSource(file: string, opts: ReadOptions = {}): Promise<string> {
  const maxBytes = opts.maxBytes ?? MAX_TEXT_BYTES;
  const info = await statFile(file);
  const { format, gzipped } = formatOf(file);
  if (info.size > maxBytes) throw tooLarge(file, info.size, maxBytes);
  let bytes = await readBytes(file);

  let records: string[];
  if (format === 'parquet') {
    records = await parquetRecords(bytes, file);
  } else {
    if (gzipped) bytes = await decompress(bytes, file, maxBytes);
    const text = decodeUtf8(bytes, file);
    records =
      format === 'txt' ? [text] : format === 'jsonl' ? jsonlRecords(text, file) : jsonRecords(text, file);
  }

  const joined = records
    .filter((r) => r.trim().length > 0)
    .join(RECORD_SEPARATOR)
    .replace(/\r\n/g, '\n');
  // Parquet pages expand on decompression; the cap applies to the text itself too.
  if (joined.length > maxBytes) throw tooLarge(file, joined.length, maxBytes);
  if (joined.trim().length === 0) {
    throw badInput(
      format === 'txt'
        ? 'has no text: the file is empty or only whitespace; pass a file with some text'
        : 'has no text: every record is empty or only whitespace; pass a file whose "text" fields hold text',
      file,
    );
  }
  return joined;
}

async function statFile(file: string): Promise<Stats> {
  let info: Stats;
  try {
    info = await stat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw badInput('does not exist: check the path', file);
    throw badInput(`cannot be read (${code ?? String(e)}); check its permissions`, file);
  }
  if (info.isDirectory()) {
    throw badInput(`is a directory; pass one text file (${SUPPORTED_EXTENSIONS.join(', ')})`, file);
  }
  if (!info.isFile()) throw badInput('is not a regular file; pass a text file saved on disk', file);
  return info;
}

function formatOf(file: string): { format: Format; gzipped: boolean } {
  const lower = file.toLowerCase();
  const ext = SUPPORTED_EXTENSIONS.find((e) => lower.endsWith(e));
  if (!ext) {
    throw badInput(
      `has an unsupported extension; Rankwise reads ${SUPPORTED_EXTENSIONS.join(', ')}: ` +
        'rename the file or convert it to one of these',
      file,
    );
  }
  const gzipped = ext.endsWith('.gz');
  return { format: ext.slice(1, gzipped ? -3 : undefined) as Format, gzipped };
}

async function readBytes(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw badInput(`cannot be read (${code ?? String(e)}); check its permissions`, file);
  }
}

async function decompress(bytes: Buffer, file: string, maxBytes: number): Promise<Buffer> {
  try {
    return await gunzip(bytes, { maxOutputLength: maxBytes });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw badInput(`decompresses to more than ${formatBytes(maxBytes)}; split it into smaller files`, file);
    }
    throw badInput(
      `is not a valid gzip file (${(e as Error).message}); it may be truncated or not compressed: ` +
        're-create it with gzip, or drop the .gz extension if it is plain text',
      file,
    );
  }
}

/** Strict UTF-8: a text file with NULs or invalid sequences is almost always the wrong file. */
function decodeUtf8(bytes: Buffer, file: string): string {
  // Windows editors save "Unicode" as UTF-16, whose byte-order mark is the telltale.
  if (
    bytes.length >= 2 &&
    ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
  ) {
    throw badInput('is UTF-16 text; re-save it as UTF-8', file);
  }
  if (bytes.includes(0)) {
    throw badInput('contains NUL bytes: it looks like a binary file, not UTF-8 text; pass a text file', file);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw badInput(
      'is not valid UTF-8 text (it may be binary or in a legacy encoding such as Latin-1); ' +
        're-save it as UTF-8',
      file,
    );
  }
}

function tooLarge(file: string, size: number, maxBytes: number) {
  return badInput(
    `is too large (${formatBytes(size)}; the limit is ${formatBytes(maxBytes)}); ` +
      'use a smaller excerpt: calibration needs far less text',
    file,
  );
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
