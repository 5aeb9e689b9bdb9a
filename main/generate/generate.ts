/**
 * One generation through a KV-cache decoder: prefill the prompt, then one token at a time, streaming
 * the decoded text as it grows. It stops at an end-of-sequence token, the token limit, the model's
 * context, or the caller's signal (Stop, Ctrl-C), and says which; the figures are measured, never
 * assumed: prefill and decode tokens/s from the wall clock, cache bytes from the tensors held.
 */
import { badInput, RankwiseError } from '../core/errors.ts';
import type { TryDecoder } from './decoder.ts';
import { makeSampler, type Sampler, type SamplingSettings } from './sampling.ts';
import type { Generation, StopReason } from '../contract/try.ts';

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: SamplingSettings;
  signal?: AbortSignal;
  /** Each new token with the text it adds (possibly empty while a multi-byte character is incomplete). */
  onToken?: (token: { index: number; id: number; text: string; elapsedSeconds: number }) => void;
}

/** The prompt's ids as the model sees them; refuses what cannot be generated from. */
export function encodePrompt(decoder: TryDecoder, prompt: string, where = 'the prompt'): Int32Array {
  if (prompt.trim() === '') throw badInput(`${where} is empty; type a beginning for the model to continue`);
  const ids = decoder.tokenizer.encode(prompt);
  const context = decoder.spec.maxPositions;
  if (ids.length >= context) {
    throw badInput(
      `${where} is ${ids.length} tokens, and the model's context is ${context}: shorten it to leave room ` +
        'for new tokens',
    );
  }
  return ids;
}

export function checkMaxNewTokens(n: number, where = 'max new tokens'): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > 1_000_000) {
    throw badInput(`${where} must be a whole number from 1 to 1000000, got ${String(n)}`);
  }
}

function checkFinite(row: Float32Array, decoder: TryDecoder): void {
  for (const x of row) {
    if (!Number.isFinite(x)) {
      throw new RankwiseError(
        'internal',
        `${decoder.label} produced a non-finite logit (${x}); its weights or settings are broken`,
      );
    }
  }
}

/** Prompt tokens decoded ahead of the new ones. */
const CONTEXT_TOKENS = 8;

/**
 * A generation taken one token at a time, so two models can take turns (side by side in the app) while
 * each one's time counts only its own work.
 */
export class Generator {
  readonly ids: number[] = [];
  stopReason: StopReason | null = null;
  private readonly sample: Sampler;
  /** The prompt's last few tokens, decoded: enough context for spaces and word boundaries. */
  private readonly context: number[];
  private readonly contextText: string;
  private readonly limit: number;
  private emitted = '';
  private next = -1;
  private prefillSeconds = 0;
  private decodeSeconds = 0;

  constructor(
    readonly decoder: TryDecoder,
    readonly prompt: Int32Array,
    private readonly opts: GenerateOptions,
  ) {
    checkMaxNewTokens(opts.maxNewTokens);
    this.sample = makeSampler(opts.sampling);
    // only a short tail of the prompt is decoded with each new token, so a long prompt costs nothing per step
    this.context = Array.from(prompt.subarray(Math.max(0, prompt.length - CONTEXT_TOKENS)));
    this.contextText = decoder.tokenizer.decode(this.context, { skipSpecial: true });
    this.limit = Math.min(opts.maxNewTokens, decoder.spec.maxPositions - prompt.length);
  }

  get done(): boolean {
    return this.stopReason !== null;
  }

  /** Produces the next token (the first call prefills); false once the generation has ended. */
  async advance(): Promise<boolean> {
    if (this.done) return false;
    if (this.opts.signal?.aborted) {
      this.stopReason = 'stopped';
      return false;
    }
    const { session, spec } = this.decoder;
    const V = spec.vocabSize;
    const t0 = performance.now();
    if (this.ids.length === 0) {
      const logits = await session.prefill(this.prompt);
      const last = logits.subarray((this.prompt.length - 1) * V, this.prompt.length * V);
      checkFinite(last, this.decoder);
      this.next = this.sample(last);
      this.prefillSeconds = (performance.now() - t0) / 1000;
    } else {
      const row = await session.step(this.next);
      checkFinite(row, this.decoder);
      this.next = this.sample(row);
      this.decodeSeconds += (performance.now() - t0) / 1000;
    }
    this.push(this.next);
    if (this.decoder.stopIds.includes(this.next)) this.stopReason = 'eos';
    else if (this.ids.length >= this.limit)
      this.stopReason = this.limit < this.opts.maxNewTokens ? 'context' : 'limit';
    return true;
  }

  private push(id: number): void {
    this.ids.push(id);
    const text = this.text();
    // hold back a trailing replacement character: the next byte-fallback token may complete it
    const stable = text.endsWith('\uFFFD') ? text.slice(0, -1) : text;
    let delta = '';
    if (stable.startsWith(this.emitted)) {
      delta = stable.slice(this.emitted.length);
      this.emitted = stable;
    }
    this.opts.onToken?.({
      index: this.ids.length - 1,
      id,
      text: delta,
      elapsedSeconds: this.prefillSeconds + this.decodeSeconds,
    });
  }

  /** The text the generated ids add after the prompt (decoded after its tail, so spaces come out right). */
  text(): string {
    const tok = this.decoder.tokenizer;
    const all = tok.decode([...this.context, ...this.ids], { skipSpecial: true });
    return all.startsWith(this.contextText)
      ? all.slice(this.contextText.length)
      : tok.decode(this.ids, { skipSpecial: true });
  }

  result(): Generation {
    const session = this.decoder.session;
    const cached = session.length;
    const kvCacheBytes = session.presentBytes();
    const n = this.ids.length;
    return {
      promptTokens: this.prompt.length,
      ids: [...this.ids],
      text: this.text(),
      stopReason: this.stopReason ?? 'stopped',
      prefillSeconds: this.prefillSeconds,
      decodeSeconds: this.decodeSeconds,
      prefillTokensPerSecond: this.prefillSeconds > 0 ? this.prompt.length / this.prefillSeconds : 0,
      decodeTokensPerSecond: n > 1 && this.decodeSeconds > 0 ? (n - 1) / this.decodeSeconds : null,
      kvCacheBytes,
      kvBytesPerToken: cached > 0 ? kvCacheBytes / cached : 0,
      device: this.decoder.device,
    };
  }
}

export async function generate(
  decoder: TryDecoder,
  prompt: Int32Array,
  opts: GenerateOptions,
): Promise<Generation> {
  const g = new Generator(decoder, prompt, opts);
  while (await g.advance());
  return g.result();
}
