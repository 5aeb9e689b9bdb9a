import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../main/model/dtype.ts';
import {
  findDuplicateKey,
  MAX_HEADER_BYTES,
  SafetensorsFile,
  writeSafetensors,
} from '../../main/model/safetensors.ts';
import type { TensorToWrite } from '../../main/model/safetensors.ts';
import { normal, mulberry32 } from '../../main/model/prng.ts';
import { tempDir } from '../helpers/paths.ts';
import { expectRankwiseError, writeRawSafetensors } from './fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir('rankwise-st-');
});
afterAll(() => tmp.cleanup());

const file = (name: string) => path.join(tmp.dir, name);

/** Parses a file by hand: length prefix, header text, header JSON, data size. */
function rawParse(p: string) {
  const buf = fs.readFileSync(p);
  const n = Number(buf.readBigUInt64LE(0));
  const text = buf.subarray(8, 8 + n).toString('utf8');
  const header = JSON.parse(text) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  return { n, text, header, dataSize: buf.length - 8 - n, buf };
}

describe('writeSafetensors', () => {
  const rng = mulberry32(3);
  const a = normal(24, rng);
  const b = normal(10, rng);
  const c = normal(7, rng);
  const tensors: TensorToWrite[] = [
    { name: 'z.half', dtype: 'F16', shape: [2, 5], data: b },
    { name: 'm.brain', dtype: 'BF16', shape: [7], data: c },
    { name: 'a.float', dtype: 'F32', shape: [4, 6], data: a },
    { name: 'bytes', dtype: 'U8', shape: [3], data: new Uint8Array([7, 8, 9]) },
    { name: 'lazy', dtype: 'F32', shape: [2], data: () => new Float32Array([1.5, -2]) },
    { name: 'empty', dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
  ];

  it('obeys the format: 8-byte-aligned header, contiguous sorted offsets, string metadata', async () => {
    const p = file('w.safetensors');
    await writeSafetensors(p, tensors, { rankwise: '1' });
    const { n, text, header, dataSize } = rawParse(p);
    expect(n % 8).toBe(0);
    expect(text).toMatch(/^\{.*\} *$/);
    expect(header.__metadata__).toEqual({ format: 'pt', rankwise: '1' });
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    // F32 tensors (alignment 4) by name, then F16/BF16 (2) by name, then U8 (1)
    expect(names).toEqual(['a.float', 'empty', 'lazy', 'm.brain', 'z.half', 'bytes']);
    let pos = 0;
    for (const k of names) {
      const [begin, end] = header[k].data_offsets as [number, number];
      expect(begin).toBe(pos);
      const item = { F32: 4, F16: 2, BF16: 2, U8: 1 }[header[k].dtype as string]!;
      expect(begin % item).toBe(0);
      pos = end;
    }
    expect(pos).toBe(dataSize);
  });

  it('round-trips F32 exactly and F16/BF16 with round-to-nearest-even', async () => {
    const f = await SafetensorsFile.open(file('w.safetensors'));
    expect([...(await f.readFloat32('a.float'))]).toEqual([...a]);
    expect([...(await f.readFloat32('z.half'))]).toEqual([...f16ToF32(f32ToF16(b))]);
    expect([...(await f.readFloat32('m.brain'))]).toEqual([...bf16ToF32(f32ToBf16(c))]);
    expect([...(await f.readFloat32('lazy'))]).toEqual([1.5, -2]);
    expect([...(await f.readBytes('bytes'))]).toEqual([7, 8, 9]);
    expect([...(await f.readFloat32('bytes'))]).toEqual([7, 8, 9]);
    expect((await f.readFloat32('empty')).length).toBe(0);
    expect(f.info('z.half')).toMatchObject({ dtype: 'F16', shape: [2, 5] });
    expect(f.metadata.rankwise).toBe('1');
    await f.close();
    await f.close(); // idempotent
  });

  it('encodes large tensors in chunks, identically', async () => {
    const big = normal(1_500_000, mulberry32(5));
    const p = file('big.safetensors');
    await writeSafetensors(p, [{ name: 'w', dtype: 'F16', shape: [1500, 1000], data: big }]);
    const f = await SafetensorsFile.open(p);
    const back = await f.readFloat32('w');
    await f.close();
    const ref = f16ToF32(f32ToF16(big));
    let same = true;
    for (let i = 0; i < ref.length; i++) if (!Object.is(back[i], ref[i])) same = false;
    expect(same).toBe(true);
  });

  it('rejects inconsistent inputs and leaves no partial file', async () => {
    const p = file('bad-write.safetensors');
    await expectRankwiseError(
      writeSafetensors(p, [{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }]),
      'bad-input',
      /needs 3 values, got 2/,
    );
    expect(fs.existsSync(p)).toBe(false);
    await expectRankwiseError(
      writeSafetensors(p, [
        { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
        { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      ]),
      'bad-input',
      /given twice/,
    );
    await expectRankwiseError(
      writeSafetensors(p, [{ name: 'x', dtype: 'I32', shape: [1], data: new Float32Array(1) }]),
      'bad-input',
      /cannot be written as I32/,
    );
  });
});

describe('SafetensorsFile.open reads only the header', () => {
  it('opens a 256 MiB (sparse) file instantly and reads one small tensor', async () => {
    const p = file('sparse.safetensors');
    const big = 256 * 1024 * 1024;
    const header = {
      small: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      big: { dtype: 'U8', shape: [big], data_offsets: [8, 8 + big] },
    };
    writeRawSafetensors(p, header, new Uint8Array(new Float32Array([3, 4]).buffer));
    fs.truncateSync(p, fs.statSync(p).size + big);
    const t0 = performance.now();
    const f = await SafetensorsFile.open(p);
    expect([...(await f.readFloat32('small'))]).toEqual([3, 4]);
    await f.close();
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('SafetensorsFile.open validation', () => {
  const t = (begin: number, end: number, shape = [(end - begin) / 4], dtype = 'F32') => ({
    dtype,
    shape,
    data_offsets: [begin, end],
  });

  /** Writes `header` + `data` bytes and expects opening to fail with `pattern`. */
  async function rejects(
    name: string,
    header: string | object,
    data: number,
    pattern: RegExp,
    prefix?: bigint,
  ) {
    const p = file(name);
    writeRawSafetensors(p, header, data, prefix);
    await expectRankwiseError(SafetensorsFile.open(p), 'bad-input', pattern, p);
  }

  it('a valid hand-made file opens', async () => {
    const p = file('ok.safetensors');
    writeRawSafetensors(p, { __metadata__: { a: 'b' }, x: t(0, 8), y: t(8, 16, [2, 1]) }, 16);
    const f = await SafetensorsFile.open(p);
    expect(f.names()).toEqual(['x', 'y']);
    expect(f.info('y')).toEqual({ dtype: 'F32', shape: [2, 1], begin: 8, end: 16 });
    await f.close();
  });

  it('missing file', async () => {
    const p = file('nope.safetensors');
    await expectRankwiseError(SafetensorsFile.open(p), 'bad-input', /file not found/, p);
  });

  it('file shorter than the length prefix', async () => {
    const p = file('tiny.safetensors');
    fs.writeFileSync(p, Buffer.from([1, 2, 3]));
    await expectRankwiseError(
      SafetensorsFile.open(p),
      'bad-input',
      /truncated.*3 bytes.*8-byte length prefix/,
      p,
    );
  });

  it('header length over the cap', () =>
    rejects(
      'cap.safetensors',
      '{}',
      0,
      new RegExp(`exceeds the ${MAX_HEADER_BYTES}-byte cap`),
      BigInt(MAX_HEADER_BYTES) + 1n,
    ));

  it('header length beyond the end of the file', () =>
    rejects('trunc.safetensors', '{}', 0, /truncated.*header claims 100 bytes but only 2 follow/, 100n));

  it('header not UTF-8', async () => {
    const p = file('utf8.safetensors');
    const h = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(4n);
    fs.writeFileSync(p, Buffer.concat([prefix, h]));
    await expectRankwiseError(SafetensorsFile.open(p), 'bad-input', /not valid UTF-8/, p);
  });

  it('header not JSON', () => rejects('json.safetensors', '{"x": ', 0, /not valid JSON/));
  it('header not an object', () => rejects('arr.safetensors', '[1, 2]', 0, /must be a JSON object/));

  it('duplicate tensor key', () =>
    rejects(
      'dup.safetensors',
      '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
      4,
      /key "x" more than once/,
    ));

  it('duplicate key spelled with an escape, and inside an entry', async () => {
    await rejects(
      'dup2.safetensors',
      '{"ab":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\\u0061b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      8,
      /key "ab" more than once/,
    );
    await rejects(
      'dup3.safetensors',
      '{"x":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,2]}}',
      2,
      /key "dtype" more than once/,
    );
  });

  it('unknown dtype names tensor and dtype', () =>
    rejects('dtype.safetensors', { w: t(0, 4, [1], 'Q4_K') }, 4, /tensor "w" has unknown dtype "Q4_K"/));

  it('bad shape', () =>
    rejects(
      'shape.safetensors',
      { w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } },
      4,
      /"w": shape must be/,
    ));

  it('bad data_offsets', () =>
    rejects(
      'offs.safetensors',
      { w: { dtype: 'F32', shape: [1], data_offsets: [0] } },
      4,
      /"w": data_offsets must be/,
    ));

  it('end before begin', () =>
    rejects(
      'order.safetensors',
      { w: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } },
      8,
      /end before begin/,
    ));

  it('offsets out of bounds', () =>
    rejects(
      'oob.safetensors',
      { w: t(0, 16) },
      8,
      /truncated safetensors file: its header describes 16 bytes of tensor data but only 8 follow/,
    ));

  it('byte length disagrees with shape × dtype', () =>
    rejects(
      'len.safetensors',
      { w: t(0, 8, [3]) },
      8,
      /"w": shape \[3\] of F32 needs 12 bytes but data_offsets span 8/,
    ));

  it('overlapping offsets', () =>
    rejects(
      'overlap.safetensors',
      { a: t(0, 8), b: t(4, 12) },
      12,
      /"a" and "b" have overlapping data_offsets/,
    ));

  it('hole between tensors', () =>
    rejects('hole.safetensors', { a: t(0, 4), b: t(8, 12) }, 12, /hole.*bytes 4\.\.8/));

  it('data not starting at 0', () => rejects('start.safetensors', { a: t(4, 8) }, 8, /hole.*bytes 0\.\.4/));

  it('trailing bytes not covered', () =>
    rejects('tail.safetensors', { a: t(0, 4) }, 12, /bytes 4\.\.12 at the end/));

  it('metadata values must be strings', () =>
    rejects(
      'meta.safetensors',
      { __metadata__: { n: 1 }, a: t(0, 4) },
      4,
      /__metadata__ value for "n" must be a string/,
    ));

  it('metadata must be an object', () =>
    rejects('meta2.safetensors', { __metadata__: 'x' }, 0, /__metadata__ must be a JSON object/));

  it('FP8 tensors parse but are not readable as float', async () => {
    const p = file('fp8.safetensors');
    writeRawSafetensors(p, { w: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, 4);
    const f = await SafetensorsFile.open(p);
    await expectRankwiseError(f.readFloat32('w'), 'unsupported-model', /"w" has dtype F8_E4M3/, p);
    expect((await f.readBytes('w')).length).toBe(4);
    await expectRankwiseError(f.readFloat32('nothing'), 'bad-input', /no tensor named "nothing"/, p);
    await f.close();
  });
});

describe('findDuplicateKey', () => {
  it('ignores braces and quotes inside strings and repeated keys in different objects', () => {
    expect(findDuplicateKey('{"a":{"x":1},"b":{"x":2},"c":"}{\\"a\\":"}')).toBeNull();
    expect(findDuplicateKey('{"a":[{"x":1,"x":2}]}')).toBe('x');
    expect(findDuplicateKey('{"a":1,"b":["a","a"]}')).toBeNull();
  });
});
