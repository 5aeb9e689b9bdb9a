/**
 * Timings of the native kernels (native-kernels/): eigh, svd, qr, cholesky and matmul of n×n float64 matrices at
 * n = 128, 512 and 1024, with the variant in use; where the CPU runs AVX2, the baseline build is timed too
 * and the ratio shown. `benchNative()` returns the rows for bench/run.ts; run this file on its own
 * (`node --import tsx bench/native.ts`) to print them.
 */
import { pathToFileURL } from 'node:url';
import { nativeInfo, nativeKernels, type NativeKernels } from '../native-kernels/index.ts';
import { mulberry32 } from '../main/model/prng.ts';

const SIZES = [128, 512, 1024] as const;
/** Repetitions per size (after one warm-up call), so the whole bench stays well under a minute. */
const REPS: Record<number, number> = { 128: 20, 512: 3, 1024: 1 };

type Op = 'eigh' | 'svd' | 'qr' | 'cholesky' | 'matmul';
const OPS: Op[] = ['eigh', 'svd', 'qr', 'cholesky', 'matmul'];

function randomMatrix(n: number, seed: number): Float64Array {
  const rand = mulberry32(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < a.length; i++) a[i] = rand() * 2 - 1;
  return a;
}

/** A Aᵀ / n + I: symmetric positive definite, for eigh and cholesky. */
function spdMatrix(a: Float64Array, n: number, k: NativeKernels): Float64Array {
  const at = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) at[j * n + i] = a[i * n + j];
  const s = k.matmul(a, n, n, at, n);
  for (let i = 0; i < s.length; i++) s[i] /= n;
  for (let i = 0; i < n; i++) s[i * n + i] += 1;
  return s;
}

function run(k: NativeKernels, op: Op, a: Float64Array, spd: Float64Array, n: number): void {
  if (op === 'eigh') k.eigh(spd, n);
  else if (op === 'svd') k.svd(a, n, n);
  else if (op === 'qr') k.qr(a, n, n);
  else if (op === 'cholesky') k.cholesky(spd, n);
  else k.matmul(a, n, n, spd, n);
}

/** Median seconds of `reps` calls after one warm-up. */
function time(fn: () => void, reps: number): number {
  fn();
  const t: number[] = [];
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    fn();
    t.push((performance.now() - start) / 1000);
  }
  t.sort((x, y) => x - y);
  return t[Math.floor(t.length / 2)];
}

function fmt(seconds: number): string {
  return seconds >= 1 ? `${seconds.toFixed(2)} s` : `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
}

export async function benchNative(): Promise<[string, string][]> {
  const info = nativeInfo();
  const rows: [string, string][] = [];
  rows.push([
    'native kernels: variant',
    `${info.variant} (Eigen ${info.eigenVersion}; CPU AVX2+FMA: ${info.cpuHasAvx2 ? 'yes' : 'no'}; N-API ${info.napiVersion})`,
  ]);
  const inUse = nativeKernels()!;
  const baseline = info.variant === 'baseline' ? undefined : nativeKernels('baseline');
  for (const n of SIZES) {
    const a = randomMatrix(n, 1000 + n);
    const spd = spdMatrix(a, n, inUse);
    for (const op of OPS) {
      const t = time(() => run(inUse, op, a, spd, n), REPS[n]);
      let value = fmt(t);
      if (baseline) {
        const tb = time(() => run(baseline, op, a, spd, n), REPS[n]);
        value += ` (baseline ${fmt(tb)}, ${info.variant} ×${(tb / t).toFixed(2)})`;
      }
      rows.push([`native ${op} ${n}×${n}`, value]);
    }
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of await benchNative()) console.log(`${k.padEnd(52)} ${v}`);
}
