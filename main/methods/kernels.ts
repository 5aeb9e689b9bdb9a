/**
 * The dense float64 kernels as the methods use them. `native-kernels/` is a package that knows nothing
 * of the engine, so its errors carry its own kinds; here they become RankwiseErrors of the same kind, so
 * a NaN Gram or a singular matrix reaches the user as bad input (exit 2) and a misuse as an internal error.
 */
import * as kernels from '../../native-kernels/index.ts';
import { RankwiseError } from '../core/errors.ts';

export type { EighResult, QrResult, SvdResult } from '../../native-kernels/index.ts';

function engineError(e: unknown): unknown {
  if (!(e instanceof kernels.NativeKernelError)) return e;
  const err = new RankwiseError(e.kind, e.message);
  err.cause = e;
  return err;
}

function mapped<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return (...args) => {
    try {
      return fn(...args);
    } catch (e) {
      throw engineError(e);
    }
  };
}

export const eigh = mapped(kernels.eigh);
export const svd = mapped(kernels.svd);
export const qr = mapped(kernels.qr);
export const cholesky = mapped(kernels.cholesky);
export const solveTriangular = mapped(kernels.solveTriangular);
export const matmul = mapped(kernels.matmul);
