/**
 * The ONNX decoder's precision as the export chooses it (ARCHITECTURE.md §7): `auto` keeps a 16-bit
 * checkpoint in 16 bits (a float16 cache for BF16 too; bfloat16 weights stay bfloat16), float32 stays
 * float32; and the one declaration of the option in the contract is what every face checks.
 */
import { describe, expect, it } from 'vitest';

import { parseOnnxDtype } from '../../main/cli/commands/export.ts';
import { ONNX_DTYPES } from '../../main/contract/api.ts';
import { SCHEMAS } from '../../main/contract/manifest.ts';
import { check } from '../../main/contract/schema.ts';
import { onnxCacheBytes, onnxPrecision, onnxWeightBytes } from '../../main/export/onnx-files.ts';
import { ONNX_TOLERANCE, VERIFY_TOLERANCE } from '../../main/export/verify.ts';

describe('onnxPrecision', () => {
  it.each([
    ['F32', 'auto', 'float32', 'float32'],
    ['F16', 'auto', 'float16', 'float16'],
    ['BF16', 'auto', 'float16', 'bfloat16'],
    ['BF16', 'float32', 'float32', 'float32'],
    ['F16', 'float32', 'float32', 'float32'],
    ['F32', 'float16', 'float16', 'float16'],
    ['BF16', 'float16', 'float16', 'bfloat16'],
  ] as const)('%s with %s: cache %s, weights %s', (dtype, setting, cache, weights) => {
    const p = onnxPrecision(dtype, setting);
    expect(p).toEqual({ cache, weights });
    expect(onnxCacheBytes(p)).toBe(cache === 'float32' ? 4 : 2);
    expect(onnxWeightBytes(p)).toBe(weights === 'float32' ? 4 : 2);
  });

  it('defaults to auto', () => {
    expect(onnxPrecision('BF16')).toEqual(onnxPrecision('BF16', 'auto'));
  });

  it('tolerates a float16 cache more loosely than float32, which keeps the checkpoint’s tolerance', () => {
    expect(ONNX_TOLERANCE.float32).toBe(VERIFY_TOLERANCE);
    expect(ONNX_TOLERANCE.float16).toBeGreaterThan(VERIFY_TOLERANCE);
  });
});

describe('the onnxDtype option', () => {
  const req = { jobId: 'j1', out: '/tmp/x' };

  it('the export request carries it, and refuses what the contract does not list', () => {
    for (const onnxDtype of ONNX_DTYPES) {
      expect(check(SCHEMAS.exportRequest, { ...req, onnxDtype }, 'req').onnxDtype).toBe(onnxDtype);
    }
    expect(() => check(SCHEMAS.exportRequest, { ...req, onnxDtype: 'bfloat16' }, 'req')).toThrow(/onnxDtype/);
    expect(check(SCHEMAS.exportRequest, req, 'req').onnxDtype).toBeUndefined();
  });

  it('--onnx-dtype reads the same list, auto when absent', () => {
    expect(parseOnnxDtype(undefined)).toBe('auto');
    for (const d of ONNX_DTYPES) expect(parseOnnxDtype(d)).toBe(d);
    expect(() => parseOnnxDtype('fp16')).toThrow(/--onnx-dtype must be one of auto, float32, float16/);
  });
});
