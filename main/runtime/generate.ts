import { forwardSequences } from './forward.ts';
import { argmax } from './kv-session.ts';
import type { ModelRunner } from './runner.ts';

export interface GreedyOptions {
  /** Tokens to generate at most. */
  steps: number;
  /** Generation stops after producing one of these (e.g. BOS, as llama2.c does, or EOS). */
  stopIds?: number[];
  signal?: AbortSignal;
}

/**
 * Greedy decoding by re-running the whole prefix each step. Quadratic, but exact and free of cache
 * bookkeeping: it is the ground truth that the exported KV-cache decoder is checked against.
 */
export async function greedyDecode(
  runner: ModelRunner,
  prompt: Int32Array,
  opts: GreedyOptions,
): Promise<Int32Array> {
  const maxLen = Math.min(prompt.length + opts.steps, runner.spec.maxPositions);
  const ids = new Int32Array(maxLen);
  ids.set(prompt);
  let n = prompt.length;
  while (n < maxLen) {
    const { logits } = await forwardSequences(runner, [ids.subarray(0, n)], {
      logits: 'last',
      signal: opts.signal,
    });
    const next = argmax((logits as Float32Array[])[0]);
    ids[n++] = next;
    if (opts.stopIds?.includes(next)) break;
  }
  return ids.slice(0, n);
}
