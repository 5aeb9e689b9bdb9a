/**
 * Try it: one or more prompts through a model and, side by side, the model it is compared with
 * (usually the original). The two take turns token by token, so both streams advance together in the
 * app, and each is timed on its own work. The engine's worker and `rankwise generate` both run this.
 */
import { badInput } from '../core/errors.ts';
import { compareGenerations } from './compare.ts';
import { openTryDecoder, type OpenDecoderOptions, type TryDecoder, type TrySource } from './decoder.ts';
import { checkMaxNewTokens, encodePrompt, Generator } from './generate.ts';
import { checkSampling, isGreedy, type SamplingSettings } from './sampling.ts';
import type { TryPromptResult, TryRunResult, TrySide, TryToken } from '../contract/try.ts';

export interface TryRunRequest {
  model: TrySource;
  /** The reference it is compared with, on the same prompts and settings. */
  compare?: TrySource;
  prompts: string[];
  maxNewTokens: number;
  sampling?: SamplingSettings;
}

export interface TryRunOptions extends OpenDecoderOptions {
  signal?: AbortSignal;
  onToken?: (t: TryToken) => void;
}

export const MAX_PROMPTS = 1000;

export function checkTryRequest(req: TryRunRequest): void {
  if (!Array.isArray(req.prompts) || req.prompts.length === 0) throw badInput('no prompt to try');
  if (req.prompts.length > MAX_PROMPTS) {
    throw badInput(`${req.prompts.length} prompts is more than ${MAX_PROMPTS}; try fewer at a time`);
  }
  checkMaxNewTokens(req.maxNewTokens);
  if (req.sampling) checkSampling(req.sampling);
}

async function closeAll(decoders: (TryDecoder | null)[]): Promise<void> {
  for (const d of decoders) await d?.close();
}

export async function runTry(req: TryRunRequest, opts: TryRunOptions = {}): Promise<TryRunResult> {
  checkTryRequest(req);
  let model: TryDecoder | null = null;
  let reference: TryDecoder | null = null;
  try {
    model = await openTryDecoder(req.model, opts);
    reference = req.compare ? await openTryDecoder(req.compare, opts) : null;
    if (reference && reference.spec.vocabSize !== model.spec.vocabSize) {
      throw badInput(
        `the two models have different vocabularies (${model.spec.vocabSize} and ${reference.spec.vocabSize} tokens); compare a model with its own original`,
        reference.label,
      );
    }
    // every prompt is checked before the first one runs
    const encoded = req.prompts.map((p, i) =>
      encodePrompt(model!, p, req.prompts.length > 1 ? `prompt ${i + 1}` : 'the prompt'),
    );
    const results: TryPromptResult[] = [];
    for (let p = 0; p < encoded.length && !opts.signal?.aborted; p++) {
      const sides: [TrySide, TryDecoder][] = [['model', model]];
      if (reference) sides.push(['compare', reference]);
      const gens = sides.map(
        ([side, decoder]) =>
          new Generator(decoder, encoded[p], {
            maxNewTokens: req.maxNewTokens,
            sampling: req.sampling,
            signal: opts.signal,
            onToken: (t) =>
              opts.onToken?.({
                prompt: p,
                side,
                index: t.index,
                id: t.id,
                text: t.text,
                tokensPerSecond: t.elapsedSeconds > 0 ? (t.index + 1) / t.elapsedSeconds : 0,
                kvCacheBytes: decoder.session.presentBytes(),
              }),
          }),
      );
      while (gens.some((g) => !g.done)) {
        for (const g of gens) await g.advance();
      }
      const [own, ref] = gens.map((g) => ({
        ...g.result(),
        label: g.decoder.label,
        exported: g.decoder.exported,
      }));
      const result: TryPromptResult = {
        prompt: req.prompts[p],
        model: own,
        ...(ref ? { compare: ref } : {}),
      };
      if (ref && reference && isGreedy(req.sampling) && !opts.signal?.aborted) {
        result.comparison = await compareGenerations(reference, model, encoded[p], ref.ids, own.ids);
      }
      results.push(result);
    }
    return { prompts: results, ...summarise(results) };
  } finally {
    await closeAll([model, reference]);
  }
}

function summarise(results: TryPromptResult[]): Pick<TryRunResult, 'summary'> {
  const compared = results.filter((r) => r.comparison);
  if (compared.length === 0) return {};
  let kl = 0;
  let positions = 0;
  for (const r of compared) {
    kl += r.comparison!.meanKl * r.comparison!.klPositions;
    positions += r.comparison!.klPositions;
  }
  return {
    summary: {
      meanIdenticalShare: compared.reduce((a, r) => a + r.comparison!.identicalShare, 0) / compared.length,
      meanKl: positions > 0 ? kl / positions : 0,
      firstDivergences: compared.map((r) => r.comparison!.firstDivergence),
      identicalPrompts: compared.filter((r) => r.comparison!.firstDivergence === null).length,
    },
  };
}
