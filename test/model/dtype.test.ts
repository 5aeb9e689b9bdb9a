import { describe, expect, it } from 'vitest';

import {
  bf16FromBits,
  bf16ToF32,
  byteLengthOf,
  decodeToFloat32,
  dtypeAlignment,
  encodeFromFloat32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  halfFromBits,
  swapBytesInPlace,
} from '../../main/model/dtype.ts';
import { mulberry32 } from '../../main/model/prng.ts';

// Independent references: values computed from the IEEE field formulas in float64, and rounding done by
// comparing distances to the two neighbouring representable values, never by bit tricks.

function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * Math.pow(2, -24);
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * Math.pow(2, e - 15);
}

function bf16Value(b: number): number {
  const sign = b & 0x8000 ? -1 : 1;
  const e = (b >> 7) & 0xff;
  const m = b & 0x7f;
  if (e === 0) return sign * m * Math.pow(2, -133);
  if (e === 255) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 128) * Math.pow(2, e - 127);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]);
const floatOf = (b: number) => ((u32[0] = b >>> 0), f32[0]);

/** All finite non-negative half values, ascending (bit order is value order for positives). */
const POS_HALVES = Array.from({ length: 0x7c00 }, (_, h) => halfValue(h));

function refHalf(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // halfway to 2^16 and beyond: ties-to-even lands on infinity
  let lo = 0;
  let hi = POS_HALVES.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (POS_HALVES[mid] <= a) lo = mid;
    else hi = mid - 1;
  }
  if (POS_HALVES[lo] === a) return sign | lo;
  const up = lo + 1; // exists because a < 65520 < largest + ulp
  const dLo = a - POS_HALVES[lo];
  const dUp = (up === 0x7c00 ? 65536 : POS_HALVES[up]) - a;
  const pick = dLo < dUp ? lo : dUp < dLo ? up : lo % 2 === 0 ? lo : up;
  return sign | pick;
}

function refBf16(x: number): number {
  const bits = bitsOf(x);
  const sign = (bits >>> 16) & 0x8000;
  const a = Math.abs(x);
  const lo = (bits & 0x7fff0000) >>> 16;
  const loV = bf16Value(lo);
  if (loV === a) return sign | lo;
  const up = lo + 1;
  const upV = up === 0x7f80 ? Math.pow(2, 128) : bf16Value(up);
  const dLo = a - loV;
  const dUp = upV - a;
  const pick = dLo < dUp ? lo : dUp < dLo ? up : lo % 2 === 0 ? lo : up;
  return sign | pick;
}

describe('F16 decoding', () => {
  it('matches the IEEE formula for all 65,536 patterns, NaN payloads and -0 included', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = f16ToF32(all);
    const outBits = new Uint32Array(out.buffer);
    for (let h = 0; h < 65536; h++) {
      const ref = halfValue(h);
      if (Number.isNaN(ref)) {
        expect(Number.isNaN(out[h])).toBe(true);
        expect(outBits[h]).toBe((((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0);
      } else if (!Object.is(out[h], ref)) {
        throw new Error(`half 0x${h.toString(16)}: got ${out[h]}, expected ${ref}`);
      }
    }
  });

  it('decodes landmark values', () => {
    const got = f16ToF32(
      new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x8000]),
    );
    expect([...got]).toEqual([1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, Infinity, -Infinity, -0]);
    expect(Object.is(got[8], -0)).toBe(true);
  });
});

describe('BF16 decoding', () => {
  it('matches the formula for all 65,536 patterns', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = bf16ToF32(all);
    for (let b = 0; b < 65536; b++) {
      const ref = bf16Value(b);
      if (Number.isNaN(ref)) expect(Number.isNaN(out[b])).toBe(true);
      else if (!Object.is(out[b], ref))
        throw new Error(`bf16 0x${b.toString(16)}: got ${out[b]}, expected ${ref}`);
    }
  });
});

describe('F32 → F16 (round to nearest, ties to even)', () => {
  it('round-trips every half pattern bit-exactly (NaN payloads too)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    expect([...f32ToF16(f16ToF32(all))]).toEqual([...all]);
  });

  it('handles the edge cases by hand', () => {
    const cases: [number, number][] = [
      [65504, 0x7bff], // largest half
      [65519, 0x7bff], // below the halfway point to 2^16
      [65520, 0x7c00], // halfway: even is "2^16" = infinity
      [1e10, 0x7c00],
      [-1e10, 0xfc00],
      [1 + 2 ** -11, 0x3c00], // tie between 1 (even) and 1+2^-10: stays 1
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 (odd) and 0x3c02 (even)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [2 ** -25, 0x0000], // half the smallest subnormal: tie to even zero
      [2 ** -25 * (1 + 2 ** -20), 0x0001],
      [3 * 2 ** -25, 0x0002], // 1.5 units: tie to even 2
      [1023.5 * 2 ** -24, 0x0400], // rounds up out of the subnormals into the smallest normal
      [2 ** -14, 0x0400],
      [2 ** -30, 0x0000],
      [-(2 ** -30), 0x8000], // sign survives underflow
      [-0, 0x8000],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
    ];
    for (const [x, h] of cases) expect([x, halfFromBits(bitsOf(x))]).toEqual([x, h]);
    expect(halfFromBits(0x7fc00000) & 0x7fff).toBeGreaterThan(0x7c00); // NaN stays NaN
    expect(halfFromBits(0x7f800001) & 0x7fff).toBeGreaterThan(0x7c00); // payload only in low bits
  });

  it('agrees with a distance-based reference on random values', () => {
    const rng = mulberry32(7);
    for (let n = 0; n < 200_000; n++) {
      let x: number;
      if (n % 2 === 0) {
        x = floatOf(Math.floor(rng() * 2 ** 32)); // any bit pattern
        if (!Number.isFinite(x)) continue;
      } else {
        // concentrated where halves live, subnormals included
        x = floatOf(bitsOf((rng() < 0.5 ? -1 : 1) * (1 + rng()) * 2 ** Math.floor(rng() * 44 - 27)));
      }
      const got = halfFromBits(bitsOf(x));
      const want = refHalf(x);
      if (got !== want) throw new Error(`${x}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
    }
  });
});

describe('F32 → BF16 (round to nearest, ties to even)', () => {
  it('round-trips every bf16 pattern bit-exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    expect([...f32ToBf16(bf16ToF32(all))]).toEqual([...all]);
  });

  it('handles ties, overflow and NaN', () => {
    expect(bf16FromBits(0x3f808000)).toBe(0x3f80); // tie, lower is even
    expect(bf16FromBits(0x3f818000)).toBe(0x3f82); // tie, upper is even
    expect(bf16FromBits(0x3f808001)).toBe(0x3f81);
    expect(bf16FromBits(0x7f7fffff)).toBe(0x7f80); // largest float rounds to infinity
    expect(bf16FromBits(0xff7fffff)).toBe(0xff80);
    expect(bf16FromBits(0x7f800001)).toBe(0x7fc0); // NaN with low payload only stays NaN
    expect(bf16FromBits(0x00008000)).toBe(0x0000); // subnormal tie to even zero
  });

  it('agrees with a distance-based reference on random values', () => {
    const rng = mulberry32(11);
    for (let n = 0; n < 200_000; n++) {
      const x = floatOf(Math.floor(rng() * 2 ** 32));
      if (!Number.isFinite(x)) continue;
      const got = bf16FromBits(bitsOf(x));
      const want = refBf16(x);
      if (got !== want) throw new Error(`${x}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
    }
  });
});

describe('whole-tensor helpers', () => {
  it('encodes and decodes tensors of each float dtype', () => {
    const values = new Float32Array([0, 1, -2.5, 3.140625, 1e-3, 65504]);
    expect([...decodeToFloat32(encodeFromFloat32(values, 'F32').slice(), 'F32')!]).toEqual([...values]);
    expect([...decodeToFloat32(encodeFromFloat32(values, 'F64'), 'F64')!]).toEqual([...values]);
    const h = decodeToFloat32(encodeFromFloat32(values, 'F16'), 'F16')!;
    expect([...h]).toEqual([...f16ToF32(f32ToF16(values))]);
    const b = decodeToFloat32(encodeFromFloat32(values, 'BF16'), 'BF16')!;
    expect([...b]).toEqual([...bf16ToF32(f32ToBf16(values))]);
  });

  it('decodes integer dtypes and refuses FP8', () => {
    const i64 = new Uint8Array(new BigInt64Array([-3n, 5n]).buffer);
    expect([...decodeToFloat32(i64, 'I64')!]).toEqual([-3, 5]);
    const i32 = new Uint8Array(new Int32Array([-7, 9]).buffer);
    expect([...decodeToFloat32(i32, 'I32')!]).toEqual([-7, 9]);
    expect(decodeToFloat32(new Uint8Array(4), 'F8_E4M3')).toBeNull();
  });

  it('knows sizes and alignments', () => {
    expect(byteLengthOf('F4', 3)).toBeNull();
    expect(byteLengthOf('F4', 4)).toBe(2);
    expect(byteLengthOf('BF16', 5)).toBe(10);
    expect(dtypeAlignment('F64')).toBe(8);
    expect(dtypeAlignment('F4')).toBe(1);
    const b = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    swapBytesInPlace(b, 4);
    expect([...b]).toEqual([4, 3, 2, 1, 8, 7, 6, 5]);
  });
});
