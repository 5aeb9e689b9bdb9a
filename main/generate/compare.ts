/**
 * How far a compressed model's text strays from the original's on the same prompt: where the two
 * greedy continuations first differ, the share of positions where they agree, and the mean KL divergence
 * KL(original ‖ compressed) of the next-token distributions along the original's own continuation
 * (both models teacher-forced on it), which measures the drift even after the texts part ways.
 */
import { RankwiseError } from '../core/errors.ts';
import type { TryDecoder } from './decoder.ts';
import type { Comparison } from '../contract/try.ts';

export function firstDivergence(a: readonly number[], b: readonly number[]): number | null {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? null : n;
}

export function identicalShare(original: readonly number[], other: readonly number[]): number {
  if (original.length === 0) return 1;
  let same = 0;
  for (let i = 0; i < original.length; i++) if (other[i] === original[i]) same += 1;
  return same / original.length;
}

/** KL(p ‖ q) of the softmaxes of two logit rows, in float64. */
export function klOfLogits(p: Float32Array, q: Float32Array): number {
  const logSoftmax = (v: Float32Array) => {
    let max = -Infinity;
    for (const x of v) max = Math.max(max, x);
    let sum = 0;
    for (const x of v) sum += Math.exp(x - max);
    const lse = max + Math.log(sum);
    return Float64Array.from(v, (x) => x - lse);
  };
  const lp = logSoftmax(p);
  const lq = logSoftmax(q);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
  return Math.max(0, kl);
}

/**
 * The comparison of one prompt's two generations. The KL pass prefills both decoders with the prompt
 * and the original's continuation (all but its last token), so it leaves their caches holding that.
 */
export async function compareGenerations(
  original: TryDecoder,
  compressed: TryDecoder,
  prompt: Int32Array,
  originalIds: readonly number[],
  compressedIds: readonly number[],
): Promise<Comparison> {
  const positions = originalIds.length;
  let meanKl = 0;
  if (positions > 0) {
    const seq = Int32Array.from([...prompt, ...originalIds.slice(0, -1)]);
    const V = original.spec.vocabSize;
    const a = await original.session.prefill(seq);
    const b = await compressed.session.prefill(seq);
    let sum = 0;
    for (let t = prompt.length - 1; t < seq.length; t++) {
      sum += klOfLogits(a.subarray(t * V, (t + 1) * V), b.subarray(t * V, (t + 1) * V));
    }
    meanKl = sum / positions;
    if (!Number.isFinite(meanKl)) {
      throw new RankwiseError('internal', `the KL divergence of ${compressed.label} is not finite`);
    }
  }
  return {
    firstDivergence: firstDivergence(originalIds, compressedIds),
    identicalShare: identicalShare(originalIds, compressedIds),
    meanKl,
    klPositions: positions,
  };
}
