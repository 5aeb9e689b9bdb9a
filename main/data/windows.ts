/**
 * The text protocol of ARCHITECTURE.md §9, shared by calibration and evaluation: a file is tokenized as
 * ONE string with the tokenizer's own special-token handling (a Llama tokenizer adds a single BOS at the
 * very start), then cut into windows of `window` tokens. This is the GPTQ / Palu / EigenAttention
 * convention, so perplexities compare across tools; every window is scored on its tokens 2…L.
 */
import { badInput, badSetting } from '../core/errors.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import { mulberry32, randomInt } from '../model/prng.ts';
import { readTextChunks, readTextSource } from './read.ts';

export type Sampling = 'first' | 'random';

export interface WindowOptions {
  /** Tokens per window (--window). At least 2: one of context, one to predict. */
  window: number;
  /**
   * How many windows. 'first': at most the number available, default all. 'random': any number (windows
   * may overlap), default as many as fit without overlap.
   */
  count?: number;
  /**
   * 'first' only: at most this many windows, fewer when the text is shorter (eval's --max-windows). With
   * `count` or `maxCount` under 'first', loadWindows reads the file only as far as those windows need.
   */
  maxCount?: number;
  /** 'first' (default): consecutive non-overlapping windows from the start. 'random': seeded start positions. */
  sampling?: Sampling;
  /** Seed for 'random' (default 0); the same seed always gives the same windows. */
  seed?: number;
  /** The file the ids came from, named in errors. */
  source?: string;
}

export interface LoadedWindows {
  windows: Int32Array[];
  /**
   * Tokens in the whole file, BOS included: what the windows were cut from. When `partial`, the tokens of
   * the part that was read.
   */
  totalTokens: number;
  source: string;
  /** True when only the start of the file was read, because the windows asked for were all there. */
  partial: boolean;
}

/**
 * Tokens read beyond the windows asked for before reading stops. The prefix is cut just before a space
 * between two words, where no tokenizer Rankwise reads merges across, so its ids are the whole text's;
 * the margin keeps the ids a tokenizer could still change at the end of the prefix (an EOS it appends, a
 * merge a stranger tokenizer makes across the cut) out of the windows.
 */
const MARGIN_TOKENS = 64;
/** The first look at a streamed text is at this many characters (then doubling): small files are read whole. */
const FIRST_PROBE_CHARS = 64 * 1024;

/** The whole file as one string, tokenized once (BOS only at its start). */
export async function tokenizeSource(path: string, tokenizer: TextTokenizer): Promise<Int32Array> {
  return tokenizer.encode(await readTextSource(path));
}

/**
 * Read + tokenize + window: what `--calib` / `--eval` files go through. With 'first' sampling and a
 * `count` or `maxCount`, the file is read, decompressed and tokenized incrementally and reading stops as
 * soon as those windows (plus a margin) exist, so the first windows of a huge file cost what they need;
 * the windows are the same as from the whole text. Otherwise, and whenever the text runs out first, the
 * whole text is tokenized once, exactly as readTextSource + encode.
 */
export async function loadWindows(
  path: string,
  tokenizer: TextTokenizer,
  opts: Omit<WindowOptions, 'source'>,
): Promise<LoadedWindows> {
  const options = { ...opts, source: path };
  checkWindowOptions(options);
  const wanted = (options.sampling ?? 'first') === 'first' ? (options.count ?? options.maxCount) : undefined;
  const need = wanted === undefined ? Infinity : wanted * options.window + MARGIN_TOKENS;
  if (!Number.isSafeInteger(need)) {
    const ids = await tokenizeSource(path, tokenizer);
    return { windows: makeWindows(ids, options), totalTokens: ids.length, source: path, partial: false };
  }

  let text = '';
  let probeAt = Math.max(FIRST_PROBE_CHARS, need * 8);
  for await (const chunk of readTextChunks(path)) {
    text += chunk;
    // a chunk may bring far more text than the windows need: tokenize only a prefix of it
    while (text.length >= probeAt) {
      const cut = prefixCut(text, probeAt);
      const ids = tokenizer.encode(text.slice(0, cut));
      if (ids.length >= need) {
        // leaving the loop closes the reader: nothing past this chunk is read or decompressed
        return { windows: makeWindows(ids, options), totalTokens: ids.length, source: path, partial: true };
      }
      // aim past the need from the characters per token seen so far, at least doubling
      probeAt = Math.max(2 * probeAt, Math.ceil((need / Math.max(1, ids.length)) * cut * 1.25));
    }
  }
  const ids = tokenizer.encode(text);
  return { windows: makeWindows(ids, options), totalTokens: ids.length, source: path, partial: false };
}

/**
 * Where to end a prefix (at most `end` characters) of a text still being read: just before the last space
 * that sits between two printable characters (within 64 Ki characters of `end`), the boundary every
 * tokenizer's pre-tokenizer splits at (SentencePiece's word mark, GPT-2's " word" pieces). Without one,
 * at `end` (the margin then covers what the cut changes). `end` is never inside a surrogate pair: a cut
 * there would leave a lone surrogate, so it is moved back one.
 */
function prefixCut(text: string, end: number): number {
  const stop = Math.max(1, end - 65536);
  for (let i = end - 2; i >= stop; i--) {
    if (text.charCodeAt(i) === 0x20 && plain(text.charCodeAt(i - 1)) && plain(text.charCodeAt(i + 1))) {
      return i;
    }
  }
  const last = text.charCodeAt(end - 1);
  return last >= 0xd800 && last <= 0xdbff ? end - 1 : end;
}

/** A printable ASCII character other than the space (anything else might be whitespace to some tokenizer). */
function plain(c: number): boolean {
  return c > 0x20 && c < 0x7f;
}

/**
 * Windows over `ids`, each a fresh copy (callers may hand them to tensors or mutate them freely).
 *
 * 'first' takes consecutive non-overlapping windows from the start and drops a last partial window.
 * 'random' draws start positions uniformly over every position where a whole window fits, as GPTQ's
 * calibration sampler does, so windows may overlap or repeat. (GPTQ draws from [0, n − W − 1], never the
 * very last start; we include it, which changes nothing but the last possible window.)
 */
export function makeWindows(ids: Int32Array, opts: WindowOptions): Int32Array[] {
  const { window, source } = opts;
  const sampling = opts.sampling ?? 'first';
  checkWindowOptions(opts);
  const n = ids.length;
  if (n < window) {
    throw badSetting(
      'window',
      `has ${n} tokens, too few for window ${window}: use a longer text or a smaller window`,
      source,
    );
  }
  const available = Math.floor(n / window);

  if (sampling === 'random') return randomWindows(ids, window, opts.count ?? available, opts.seed ?? 0);

  const count = opts.count ?? Math.min(opts.maxCount ?? available, available);
  if (count > available) {
    throw badSetting(
      'window',
      `has ${n} tokens, enough for ${available} windows of ${window}, but ${count} were asked for: ` +
        `ask for at most ${available}, use a smaller window or a longer text`,
      source,
    );
  }
  const windows: Int32Array[] = [];
  for (let i = 0; i < count; i++) windows.push(ids.slice(i * window, (i + 1) * window));
  return windows;
}

function checkWindowOptions(opts: WindowOptions): void {
  const { window } = opts;
  const sampling = opts.sampling ?? 'first';
  if (!Number.isInteger(window) || window < 2) {
    throw badSetting(
      'window',
      `window must be a whole number of at least 2 (got ${window}): one token of context and one to predict`,
    );
  }
  for (const count of [opts.count, opts.maxCount]) {
    if (count !== undefined && (!Number.isInteger(count) || count < 1)) {
      throw badInput(`the number of windows must be a whole number of at least 1 (got ${count})`);
    }
  }
  if (sampling !== 'first' && sampling !== 'random') {
    throw badInput(`window sampling must be 'first' or 'random' (got ${JSON.stringify(sampling)})`);
  }
}

function randomWindows(ids: Int32Array, window: number, count: number, seed: number): Int32Array[] {
  if (!Number.isSafeInteger(seed)) throw badInput(`the seed must be a whole number (got ${seed})`);
  const next = mulberry32(seed);
  const starts = ids.length - window + 1;
  const windows: Int32Array[] = [];
  for (let i = 0; i < count; i++) {
    const start = randomInt(next, starts);
    windows.push(ids.slice(start, start + window));
  }
  return windows;
}
