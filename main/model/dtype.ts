/**
 * Storage dtypes of safetensors files and the conversions between them and float32.
 *
 * All decoders and encoders work on whole typed arrays with plain loops: checkpoints hold millions of
 * elements, so nothing here may allocate per element.
 */
import os from 'node:os';

/**
 * Every dtype string the safetensors format defines (as of safetensors 0.6/0.7), with its width in bits.
 * We must know them all to *parse* any valid header (sizes and offsets), even those we cannot convert.
 */
export const SAFETENSORS_DTYPE_BITS = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
} as const;

export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPE_BITS;

/** Dtypes `decodeToFloat32` converts. Integers are included because they cost one loop each. */
export const FLOAT_READABLE_DTYPES: readonly SafetensorsDType[] = [
  'F32',
  'F16',
  'BF16',
  'F64',
  'I64',
  'I32',
  'U32',
  'I16',
  'U16',
  'I8',
  'U8',
  'BOOL',
];

/** Dtypes `encodeFromFloat32` produces (what the writer accepts for Float32Array data). */
export const FLOAT_WRITABLE_DTYPES: readonly SafetensorsDType[] = ['F32', 'F16', 'BF16', 'F64'];

export function isSafetensorsDType(s: string): s is SafetensorsDType {
  return Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_BITS, s);
}

export function dtypeBits(dtype: SafetensorsDType): number {
  return SAFETENSORS_DTYPE_BITS[dtype];
}

/**
 * Natural alignment of one element in bytes (1 for sub-byte types). The writer orders tensors by this,
 * largest first, so every tensor starts on a multiple of its own element size.
 */
export function dtypeAlignment(dtype: SafetensorsDType): number {
  return Math.max(1, SAFETENSORS_DTYPE_BITS[dtype] / 8) | 0;
}

/** Bytes per element, for the dtypes the engine computes with: main/core/memory.ts's (the wizard's too). */
export { dtypeBytes } from '../core/memory.ts';

/**
 * Bytes that `numel` elements of `dtype` occupy, or null when the bit count is not a whole number of
 * bytes (possible only for the 4- and 6-bit types; safetensors rejects such tensors).
 */
export function byteLengthOf(dtype: SafetensorsDType, numel: number): number | null {
  const bits = numel * SAFETENSORS_DTYPE_BITS[dtype];
  return bits % 8 === 0 ? bits / 8 : null;
}

/** safetensors is little-endian; on a big-endian host every multi-byte element must be swapped. */
export const HOST_IS_LITTLE_ENDIAN = os.endianness() === 'LE';

/** Reverses the bytes of each `width`-byte element in place (no-op for width 1). */
export function swapBytesInPlace(bytes: Uint8Array, width: number): void {
  if (width <= 1) return;
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// F16 and BF16 <-> F32, bit-exact.

let f16Table: Float32Array | null = null;

/**
 * All 65,536 half-precision values as float32, built once from the bit fields. A table lookup is both
 * the fastest decoder in JS and trivially exact for subnormals, infinities and NaN payloads.
 */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      // inf / NaN: keep the payload in the top mantissa bits, as hardware converters do
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else if (exp === 0) {
      // zero or subnormal: mant · 2^-24 is exact in float32
      table[h] = (sign ? -1 : 1) * mant * 2 ** -24;
    } else {
      bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  f16Table = table;
  return table;
}

/** Decodes IEEE half-precision bit patterns into `out` (allocated when omitted). */
export function f16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  // Copy bit patterns, not values: a float read into a JS number may have its NaN payload quieted by the
  // float32 → float64 conversion (it depends on the JIT tier), so values would not round-trip exactly.
  const table = new Uint32Array(halfTable().buffer);
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  const n = src.length;
  for (let i = 0; i < n; i++) bits[i] = table[src[i]];
  return out;
}

/** Decodes bfloat16 bit patterns: a bfloat16 is exactly the top half of a float32. */
export function bf16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  const n = src.length;
  for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
  return out;
}

/** Encodes float32 values to half precision, rounding to nearest, ties to even; overflow gives ±inf. */
export function f32ToF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = halfFromBits(bits[i]);
  return out;
}

/** One float32 bit pattern → half bit pattern. Exported for tests and single-value callers. */
export function halfFromBits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  const mant = f & 0x7fffff;
  if (exp === 0xff) {
    if (!mant) return sign | 0x7c00;
    // NaN keeps its top payload bits (so half NaNs round-trip exactly); when the payload lives only in
    // the dropped low bits, set the quiet bit rather than let it collapse into infinity
    return sign | 0x7c00 | (mant >>> 13 || 0x200);
  }
  if (exp > 142) return sign | 0x7c00; // ≥ 2^16: beyond the largest half even before rounding
  if (exp >= 113) {
    // normal half: rebias the exponent, keep 10 mantissa bits, round on the 13 dropped ones.
    // A carry out of the mantissa correctly bumps the exponent (and 65520 → inf).
    let h = ((exp - 112) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
    return sign | h;
  }
  if (exp < 102) return sign; // below 2^-25: rounds to zero (2^-25 itself is the tie, handled below)
  // subnormal half: value = m · 2^(exp-150) with the implicit bit; in units of 2^-24 that is m >> (126-exp)
  const m = mant | 0x800000;
  const shift = 126 - exp;
  let h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && h & 1)) h++;
  return sign | h; // h may reach 0x400, which is exactly the smallest normal
}

/** Encodes float32 values to bfloat16, rounding to nearest, ties to even; NaN stays NaN. */
export function f32ToBf16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = bf16FromBits(bits[i]);
  return out;
}

export function bf16FromBits(f: number): number {
  if ((f & 0x7f800000) === 0x7f800000 && f & 0x7fffff) {
    // NaN: truncate (no rounding carry), but if that clears every kept mantissa bit it would read as
    // infinity, so set the quiet bit in that case only
    const top = f >>> 16;
    return top & 0x7f ? top : top | 0x40;
  }
  // adding 0x7fff plus the lowest kept bit rounds half to even; the carry may roll into the exponent,
  // which is right (and the largest finite values round up to inf). f < 2^32 - 0x8000 here, so no wrap.
  return ((f + 0x7fff + ((f >>> 16) & 1)) / 65536) & 0xffff;
}

// ---------------------------------------------------------------------------------------------------
// Whole-tensor conversions used by the safetensors reader and writer.

/**
 * Interprets little-endian bytes of `dtype` as numbers in a new Float32Array. `bytes` must start on an
 * 8-byte-aligned offset of its buffer (the reader allocates a fresh buffer per tensor to guarantee it).
 * Returns null for dtypes we do not decode (FP8, sub-byte and complex types).
 */
export function decodeToFloat32(bytes: Uint8Array, dtype: SafetensorsDType): Float32Array | null {
  if (!HOST_IS_LITTLE_ENDIAN) {
    bytes = bytes.slice();
    swapBytesInPlace(bytes, dtypeAlignment(dtype));
  }
  const { buffer, byteOffset: off } = bytes;
  const len = bytes.byteLength;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer, off, len / 4);
    case 'F16':
      return f16ToF32(new Uint16Array(buffer, off, len / 2));
    case 'BF16':
      return bf16ToF32(new Uint16Array(buffer, off, len / 2));
    case 'F64':
      return Float32Array.from(new Float64Array(buffer, off, len / 8));
    case 'I64': {
      const src = new BigInt64Array(buffer, off, len / 8);
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
      return out;
    }
    case 'I32':
      return Float32Array.from(new Int32Array(buffer, off, len / 4));
    case 'U32':
      return Float32Array.from(new Uint32Array(buffer, off, len / 4));
    case 'I16':
      return Float32Array.from(new Int16Array(buffer, off, len / 2));
    case 'U16':
      return Float32Array.from(new Uint16Array(buffer, off, len / 2));
    case 'I8':
      return Float32Array.from(new Int8Array(buffer, off, len));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(bytes);
    default:
      return null;
  }
}

/**
 * Little-endian bytes of `values` in `dtype` (F32, F16, BF16 or F64). For F32 on a little-endian host
 * the result is a view of `values` itself, so writing a float32 tensor copies nothing.
 */
export function encodeFromFloat32(values: Float32Array, dtype: SafetensorsDType): Uint8Array {
  let out: Uint8Array;
  switch (dtype) {
    case 'F32':
      out = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      if (!HOST_IS_LITTLE_ENDIAN) out = out.slice();
      break;
    case 'F16': {
      const h = f32ToF16(values);
      out = new Uint8Array(h.buffer);
      break;
    }
    case 'BF16': {
      const h = f32ToBf16(values);
      out = new Uint8Array(h.buffer);
      break;
    }
    case 'F64': {
      const d = Float64Array.from(values);
      out = new Uint8Array(d.buffer);
      break;
    }
    default:
      throw new TypeError(`cannot encode float32 data as ${dtype}`);
  }
  if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(out, dtypeAlignment(dtype));
  return out;
}
