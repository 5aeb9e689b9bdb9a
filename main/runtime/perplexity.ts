import { badInput, RankwiseError } from '../core/errors.ts';
import type { ForwardOptions } from './forward.ts';
import { forwardSequences, HEAD_TENSOR, weightsFile } from './forward.ts';
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
  if (tokens === 0) throw badInput('there are no tokens to score: every sequence needs at least 2 tokens');
  const meanNll = sum / tokens;
  const ppl = Math.exp(meanNll);
  // forwardSequences refuses NaN and Inf where they arise; a finite NLL so large that exp() overflows
  // still means an output head out of range. A perplexity of NaN or Infinity is never a result.
  if (!Number.isFinite(ppl)) {
    const what = `the perplexity is ${ppl} (mean NLL ${meanNll} nats/token)`;
    const file = weightsFile(runner.source, (n) => HEAD_TENSOR.test(n));
    if (!file) throw new RankwiseError('internal', `${what} from in-memory weights`);
    throw badInput(`${what}: the output head's weights are out of range; the checkpoint is damaged`, file);
  }
  return {
    perplexity: ppl,
    meanNll,
    tokens,
    sequences: sequences.length,
    seconds: (performance.now() - start) / 1000,
  };
}
