import type { ForwardOptions } from './forward.ts';
import { forwardSequences } from './forward.ts';
import type { ModelRunner } from './runner.ts';

export interface PerplexityResult {
  /** exp(mean NLL) over every predicted token. */
  perplexity: number;
  /** Mean negative log-likelihood, nats per token. */
  meanNll: number;
  /** Predicted tokens: Σ (T − 1) over sequences. */
  tokens: number;
  sequences: number;
  seconds: number;
}

/** Perplexity over sequences each scored on its tokens 2…T (the text protocol of ARCHITECTURE.md §9). */
export async function perplexity(
  runner: ModelRunner,
  sequences: Int32Array[],
  opts: Omit<ForwardOptions, 'logits'> = {},
): Promise<PerplexityResult> {
  const start = performance.now();
  const { nll } = await forwardSequences(runner, sequences, { ...opts, stage: opts.stage ?? 'eval' });
  let sum = 0;
  let tokens = 0;
  for (const row of nll) {
    for (let i = 0; i < row.length; i++) sum += row[i];
    tokens += row.length;
  }
  const meanNll = sum / tokens;
  return {
    perplexity: Math.exp(meanNll),
    meanNll,
    tokens,
    sequences: sequences.length,
    seconds: (performance.now() - start) / 1000,
  };
}
