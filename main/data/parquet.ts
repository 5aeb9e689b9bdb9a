/**
 * The `text` column of a Parquet file (the format Hugging Face datasets are published in), via hyparquet.
 * The whole file is already in memory (the size cap applies first), so it is handed over as one buffer
 * rather than hyparquet's ranged file reader.
 */
import zlib from 'node:zlib';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import type { Compressors, FileMetaData } from 'hyparquet';
import { badInput } from '../core/errors.ts';

const TEXT_COLUMN = 'text';

// hyparquet decodes SNAPPY itself; node:zlib covers the other codecs Node ships (ZSTD arrives in Node 22).
const compressors: Compressors = {
  GZIP: (input) => zlib.gunzipSync(input),
  BROTLI: (input) => zlib.brotliDecompressSync(input),
};

export async function parquetRecords(bytes: Buffer, file: string): Promise<string[]> {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let metadata: FileMetaData;
  try {
    metadata = parquetMetadata(buffer);
  } catch (e) {
    throw badInput(
      `is not a valid parquet file (${(e as Error).message}); it may be truncated: download or export it again`,
      file,
    );
  }

  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  if (!columns.includes(TEXT_COLUMN)) {
    throw badInput(
      `has no "${TEXT_COLUMN}" column (its columns: ${columns.join(', ') || 'none'}); ` +
        `rename the column that holds the documents to "${TEXT_COLUMN}"`,
      file,
    );
  }

  let values: unknown[];
  try {
    const rows = await parquetReadObjects({ file: buffer, metadata, columns: [TEXT_COLUMN], compressors });
    values = rows.map((row) => row[TEXT_COLUMN]);
  } catch (e) {
    const message = (e as Error).message;
    const codec = /unsupported compression codec: (\w+)/.exec(message)?.[1];
    if (codec) {
      throw badInput(
        `is compressed with ${codec}, which Rankwise cannot read; re-save it with SNAPPY, GZIP, BROTLI or ` +
          'no compression, or export the text to .jsonl',
        file,
      );
    }
    throw badInput(
      `is a corrupt parquet file: its "${TEXT_COLUMN}" column cannot be read (${message})`,
      file,
    );
  }

  const decoder = new TextDecoder('utf-8', { fatal: true });
  const records: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value === 'string') {
      records.push(value);
    } else if (value instanceof Uint8Array) {
      // A BYTE_ARRAY column without the UTF8 annotation arrives as raw bytes.
      try {
        records.push(decoder.decode(value));
      } catch {
        throw badInput(`row ${i} of the "${TEXT_COLUMN}" column is not valid UTF-8 text`, file);
      }
    } else {
      throw badInput(
        `row ${i} of the "${TEXT_COLUMN}" column is ${value === null || value === undefined ? 'null' : `a ${typeof value}`}, ` +
          'not a string; every row must hold text: drop or fill the empty rows',
        file,
      );
    }
  }
  return records;
}
