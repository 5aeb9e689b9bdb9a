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
import fs from 'node:fs';
import type { Stats } from 'node:fs';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { badInput, RankwiseError } from '../core/errors.ts';
import { formatBytes } from '../core/format.ts';
import { fsErrorCode, isMissing, unreadable } from '../model/fs-errors.ts';
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

/** Bytes read (or decompressed) at a time by the streaming reader. */
const CHUNK_BYTES = 1024 * 1024;

export interface ReadOptions {
  /** Override the size cap (tests use a tiny one). */
  maxBytes?: number;
  /** Bytes per read for .txt and .jsonl (and their .gz); tests use tiny ones to cross every boundary. */
  chunkBytes?: number;
}

type Format = 'txt' | 'jsonl' | 'json' | 'parquet';

const gunzip = promisify(zlib.gunzip);

/** The whole text of `file`: the chunks of readTextChunks, joined. */
export async function readTextSource(file: string, opts: ReadOptions = {}): Promise<string> {
  const parts: string[] = [];
  for await (const chunk of readTextChunks(file, opts)) parts.push(chunk);
  return parts.join('');
}

/**
 * The text of `file` as it is read: joined, the chunks are exactly readTextSource's string. `.txt` and
 * `.jsonl` (and their `.gz`) are read, decompressed and decoded a chunk at a time, so a caller that needs
 * only the start of a large file stops early (return from the loop) and the rest is never read; `.json`
 * and `.parquet` are whole documents and are parsed whole. Errors are thrown when the bad part is reached.
 */
export async function* readTextChunks(file: string, opts: ReadOptions = {}): AsyncGenerator<string, void> {
  const maxBytes = opts.maxBytes ?? MAX_TEXT_BYTES;
  const info = await statFile(file);
  const { format, gzipped } = formatOf(file);
  if (info.size > maxBytes) throw tooLarge(file, info.size, maxBytes);
  const out = new Joiner(file, maxBytes);

  if (format === 'json' || format === 'parquet') {
    let bytes = await readBytes(file);
    let records: string[];
    if (format === 'parquet') {
      records = await parquetRecords(bytes, file);
    } else {
      if (gzipped) bytes = await decompress(bytes, file, maxBytes);
      records = jsonRecords(decodeUtf8(bytes, file), file);
    }
    for (const r of records) {
      const s = out.record(r);
      if (s) yield s;
    }
  } else {
    const decoder = new Utf8Stream(file);
    const lines = format === 'jsonl' ? new JsonlLines(file) : null;
    const emit = (text: string): string => {
      if (!lines) return out.text(text);
      let s = '';
      for (const r of lines.push(text)) s += out.record(r);
      return s;
    };
    for await (const bytes of byteChunks(file, gzipped, maxBytes, opts.chunkBytes ?? CHUNK_BYTES)) {
      const s = emit(decoder.push(bytes));
      if (s) yield s;
    }
    let s = emit(decoder.end());
    if (lines) for (const r of lines.end()) s += out.record(r);
    if (s) yield s;
  }

  const last = out.end(format);
  if (last) yield last;
}

/**
 * Joins records with RECORD_SEPARATOR (dropping whitespace-only ones), turns CRLF into LF across chunk
 * boundaries (a trailing CR is held back until the next chunk shows whether an LF follows) and applies the
 * size cap to the text itself, as it grows.
 */
class Joiner {
  private started = false;
  private hasText = false;
  private pendingCr = false;
  private length = 0;

  constructor(
    private readonly file: string,
    private readonly maxBytes: number,
  ) {}

  /** One whole record (a JSONL line, a JSON item, a parquet row). */
  record(r: string): string {
    if (r.trim().length === 0) return '';
    const s = this.started ? RECORD_SEPARATOR + r : r;
    this.started = true;
    this.hasText = true;
    return this.normalise(s);
  }

  /** The next part of a plain text, which is one record. */
  text(t: string): string {
    if (!this.hasText && t.trim().length > 0) this.hasText = true;
    return this.normalise(t);
  }

  /** What is still held back; throws when there was no text at all. */
  end(format: Format): string {
    if (!this.hasText) {
      throw badInput(
        format === 'txt'
          ? 'has no text: the file is empty or only whitespace; pass a file with some text'
          : 'has no text: every record is empty or only whitespace; pass a file whose "text" fields hold text',
        this.file,
      );
    }
    return this.normalise('', true);
  }

  private normalise(s: string, final = false): string {
    if (this.pendingCr) s = '\r' + s;
    this.pendingCr = !final && s.endsWith('\r');
    if (this.pendingCr) s = s.slice(0, -1);
    s = s.replace(/\r\n/g, '\n');
    this.length += s.length;
    // Parquet pages and gzip members expand; the cap applies to the text itself too.
    if (this.length > this.maxBytes) throw tooLarge(this.file, this.length, this.maxBytes);
    return s;
  }
}

/**
 * Strict streaming UTF-8, with the checks decodeUtf8 makes on a whole file: a UTF-16 byte-order mark, NUL
 * bytes and invalid sequences are refused; a UTF-8 byte-order mark is dropped.
 */
class Utf8Stream {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private head: Buffer | null = Buffer.alloc(0);

  constructor(private readonly file: string) {}

  push(bytes: Buffer): string {
    if (this.head) {
      // the first two bytes decide UTF-16; hold tiny first chunks back until they are there
      this.head = Buffer.concat([this.head, bytes]);
      if (this.head.length < 2) return '';
      bytes = this.head;
      this.head = null;
      checkNotUtf16(bytes, this.file);
    }
    return this.decode(bytes, true);
  }

  end(): string {
    let s = '';
    if (this.head) {
      const bytes = this.head;
      this.head = null;
      s = this.decode(bytes, true);
    }
    return s + this.decode(Buffer.alloc(0), false);
  }

  private decode(bytes: Buffer, stream: boolean): string {
    if (bytes.includes(0)) throw nulBytes(this.file);
    try {
      return this.decoder.decode(bytes, { stream });
    } catch {
      throw notUtf8(this.file);
    }
  }
}

/** JSON Lines from a stream of text: whole lines are parsed as they complete, numbered from 1. */
class JsonlLines {
  private partial = '';
  private linesBefore = 0;

  constructor(private readonly file: string) {}

  push(text: string): string[] {
    const s = this.partial + text;
    const cut = s.lastIndexOf('\n');
    if (cut < 0) {
      this.partial = s;
      return [];
    }
    this.partial = s.slice(cut + 1);
    return this.parse(s.slice(0, cut));
  }

  end(): string[] {
    const s = this.partial;
    this.partial = '';
    return s.length > 0 ? this.parse(s) : [];
  }

  /** Parses whole lines with jsonlRecords, its line numbers shifted to count from the file's start. */
  private parse(lines: string): string[] {
    const offset = this.linesBefore;
    let count = 1;
    for (let i = lines.indexOf('\n'); i !== -1; i = lines.indexOf('\n', i + 1)) count++;
    this.linesBefore += count;
    try {
      return jsonlRecords(lines, this.file);
    } catch (e) {
      if (!(e instanceof RankwiseError) || offset === 0) throw e;
      const message = e.message.startsWith(`${this.file}: `)
        ? e.message.slice(this.file.length + 2)
        : e.message;
      throw badInput(
        message.replace(/^line (\d+)/, (_, n: string) => `line ${Number(n) + offset}`),
        this.file,
      );
    }
  }
}

/**
 * The file's bytes a chunk at a time, gunzipped on the way when `gzipped`. The streams are destroyed when
 * the consumer stops early, so nothing past what it took is read or decompressed.
 */
async function* byteChunks(
  file: string,
  gzipped: boolean,
  maxBytes: number,
  chunkBytes: number,
): AsyncGenerator<Buffer, void> {
  const input = fs.createReadStream(file, { highWaterMark: chunkBytes });
  const gunzipStream = gzipped ? zlib.createGunzip({ chunkSize: Math.max(64, chunkBytes) }) : null;
  if (gunzipStream) {
    input.on('error', (e) => gunzipStream.destroy(e));
    input.pipe(gunzipStream);
  }
  let total = 0;
  try {
    for await (const chunk of (gunzipStream ?? input) as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (gzipped && total > maxBytes) {
        throw badInput(
          `decompresses to more than ${formatBytes(maxBytes)}; split it into smaller files`,
          file,
        );
      }
      yield chunk;
    }
  } catch (e) {
    if (e instanceof RankwiseError) throw e;
    if (fsErrorCode(e)) throw unreadable(e, file);
    throw notGzip(e, file);
  } finally {
    input.destroy();
    gunzipStream?.destroy();
  }
}

async function statFile(file: string): Promise<Stats> {
  let info: Stats;
  try {
    info = await fs.promises.stat(file);
  } catch (e) {
    if (isMissing(e)) throw badInput('does not exist: check the path', file);
    throw unreadable(e, file);
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
    return await fs.promises.readFile(file);
  } catch (e) {
    throw unreadable(e, file);
  }
}

async function decompress(bytes: Buffer, file: string, maxBytes: number): Promise<Buffer> {
  try {
    return await gunzip(bytes, { maxOutputLength: maxBytes });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw badInput(`decompresses to more than ${formatBytes(maxBytes)}; split it into smaller files`, file);
    }
    throw notGzip(e, file);
  }
}

function notGzip(e: unknown, file: string): RankwiseError {
  return badInput(
    `is not a valid gzip file (${(e as Error).message}); it may be truncated or not compressed: ` +
      're-create it with gzip, or drop the .gz extension if it is plain text',
    file,
  );
}

/** Strict UTF-8: a text file with NULs or invalid sequences is almost always the wrong file. */
function decodeUtf8(bytes: Buffer, file: string): string {
  checkNotUtf16(bytes, file);
  if (bytes.includes(0)) throw nulBytes(file);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw notUtf8(file);
  }
}

/** Windows editors save "Unicode" as UTF-16, whose byte-order mark is the telltale. */
function checkNotUtf16(bytes: Buffer, file: string): void {
  if (
    bytes.length >= 2 &&
    ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
  ) {
    throw badInput('is UTF-16 text; re-save it as UTF-8', file);
  }
}

function nulBytes(file: string): RankwiseError {
  return badInput('contains NUL bytes: it looks like a binary file, not UTF-8 text; pass a text file', file);
}

function notUtf8(file: string): RankwiseError {
  return badInput(
    'is not valid UTF-8 text (it may be binary or in a legacy encoding such as Latin-1); re-save it as UTF-8',
    file,
  );
}

function tooLarge(file: string, size: number, maxBytes: number) {
  return badInput(
    `is too large (${formatBytes(size)}; the limit is ${formatBytes(maxBytes)}); ` +
      'use a smaller excerpt: calibration needs far less text',
    file,
  );
}
