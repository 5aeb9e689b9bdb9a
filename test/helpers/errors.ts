import { expect } from 'vitest';
import { RankwiseError } from '../../main/core/errors.ts';

/** Runs `fn` and returns the bad-input RankwiseError it must throw. */
export function badInputFrom(fn: () => unknown): RankwiseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RankwiseError);
    expect((e as RankwiseError).kind).toBe('bad-input');
    return e as RankwiseError;
  }
  throw new Error('expected a bad-input error, nothing was thrown');
}
