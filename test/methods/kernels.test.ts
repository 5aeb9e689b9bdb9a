import { describe, expect, it } from 'vitest';

import { RankwiseError } from '../../main/core/errors.ts';
import { cholesky, eigh, matmul } from '../../main/methods/kernels.ts';
import { NativeKernelError } from '../../native-kernels/index.ts';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('the kernels as the methods see them', () => {
  it('values the data brought (NaN, not positive definite) are bad input, with the kernel error as cause', () => {
    for (const e of [
      thrown(() => eigh(Float64Array.of(1, Number.NaN, Number.NaN, 1), 2)),
      thrown(() => cholesky(Float64Array.of(1, 2, 2, 1), 2)),
    ]) {
      expect(e).toBeInstanceOf(RankwiseError);
      expect((e as RankwiseError).kind).toBe('bad-input');
      expect((e as RankwiseError).cause).toBeInstanceOf(NativeKernelError);
    }
  });

  it('a caller’s mistake is internal, its message kept', () => {
    const e = thrown(() => matmul(new Float64Array(3), 2, 2, new Float64Array(4), 2));
    expect(e).toBeInstanceOf(RankwiseError);
    expect((e as RankwiseError).kind).toBe('internal');
    expect((e as RankwiseError).message).toMatch(/^matmul: /);
  });

  it('results pass through unchanged', () => {
    expect(Array.from(matmul(Float64Array.of(1, 2), 1, 2, Float64Array.of(3, 4), 1))).toEqual([11]);
  });
});
