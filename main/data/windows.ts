/**
 * The text protocol of ARCHITECTURE.md §9, shared by calibration and evaluation: a file is tokenized as
 * ONE string with the tokenizer's own special-token handling (a Llama tokenizer adds a single BOS at the
 * very start), then cut into windows of `window` tokens. This is the GPTQ / Palu / EigenAttention
 * convention, so perplexities compare across tools; every window is scored on its tokens 2…L.
 */
import { badInput } from '../api/errors.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import { mulberry32, randomInt } from '../model/prng.ts';
import { readTextSource } from './read.ts';

export type Sampling = 'first' | 'random';

export interface WindowOptions {
  /** Tokens per window (--window). At least 2: one of context, one to predict. */
  window: number;
  /**
   * How many windows. 'first': at most the number available, default all. 'random': any number (windows
   * may overlap), default as many as fit without overlap.
   */
  count?: number;
  /** 'first' (default): consecutive non-overlapping windows from the start. 'random': seeded start positions. */
  sampling?: Sampling;
  /** Seed for 'random' (default 0); the same seed always gives the same windows. */
  seed?: number;
  /** The file the ids came from, named in errors. */
  source?: string;
}

export interface LoadedWindows {
  windows: Int32Array[];
  /** Tokens in the whole file, BOS included: what the windows were cut from. */
  totalTokens: number;
  source: string;
}

/** The whole file as one string, tokenized once (BOS only at its start). */
export async function tokenizeSource(path: string, tokenizer: TextTokenizer): Promise<Int32Array> {
  return tokenizer.encode(await readTextSource(path));
}

/** Read + tokenize + window: what `--calib` / `--eval` files go through. */
export async function loadWindows(
  path: string,
  tokenizer: TextTokenizer,
  opts: Omit<WindowOptions, 'source'>,
): Promise<LoadedWindows> {
  const ids = await tokenizeSource(path, tokenizer);
  return { windows: makeWindows(ids, { ...opts, source: path }), totalTokens: ids.length, source: path };
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
  if (!Number.isInteger(window) || window < 2) {
    throw badInput(
      `--window must be a whole number of at least 2 (got ${window}): a window needs one token of ` +
        'context and one to predict',
    );
  }
  if (opts.count !== undefined && (!Number.isInteger(opts.count) || opts.count < 1)) {
    throw badInput(`the number of windows must be a whole number of at least 1 (got ${opts.count})`);
  }
  if (sampling !== 'first' && sampling !== 'random') {
    throw badInput(`window sampling must be 'first' or 'random' (got ${JSON.stringify(sampling)})`);
  }
  const n = ids.length;
  if (n < window) {
    throw badInput(
      `has ${n} tokens; one window needs ${window}: use a longer text or a smaller --window`,
      source,
    );
  }
  const available = Math.floor(n / window);

  if (sampling === 'random') return randomWindows(ids, window, opts.count ?? available, opts.seed ?? 0);

  const count = opts.count ?? available;
  if (count > available) {
    throw badInput(
      `has ${n} tokens, enough for ${available} windows of ${window}, but ${count} were asked for: ` +
        `ask for at most ${available}, use a smaller --window or a longer text`,
      source,
    );
  }
  const windows: Int32Array[] = [];
  for (let i = 0; i < count; i++) windows.push(ids.slice(i * window, (i + 1) * window));
  return windows;
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
