/**
 * The two protocols behind the perplexities quoted in ../shared/testdata/README.md for stories260K, so the
 * forward pass can be checked against those figures. They are reference protocols, not the app's own
 * (windows.ts is): the figures were produced by a numpy script, and this file pins down exactly what it did.
 *
 * A "paragraph" is a line of the file with its surrounding whitespace removed, blank lines skipped. That is
 * the reading that reproduces the README: the first 300 paragraphs, each encoded as `<s>` + paragraph, give
 * 29,256 predicted tokens and mean NLL 1.4353 (untrimmed lines give 29,302: some lines end in a space).
 */
import { badInput, badSetting } from '../core/errors.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';

/** The first `n` paragraphs (trimmed non-empty lines) of `text`; all of them when `n` is undefined. */
export function firstParagraphs(text: string, n?: number): string[] {
  const paragraphs: string[] = [];
  for (const line of text.split('\n')) {
    if (n !== undefined && paragraphs.length >= n) break;
    const trimmed = line.trim();
    if (trimmed.length > 0) paragraphs.push(trimmed);
  }
  return paragraphs;
}

/**
 * The README's separator between paragraphs in the long-context protocol. Its "joined by newlines" was done
 * on token ids: every paragraph encoded on its own (so each starts with SentencePiece's `▁` dummy prefix)
 * with the newline byte token between them. Joining the text with "\n " and encoding once yields exactly
 * those ids, because the normalizer turns the space into that `▁` and no merge spans a `▁`. Measured with
 * an independent float64 forward pass over the first 60 windows of 512 (30,660 predicted tokens):
 *   "\n " → mean NLL 1.4218 (the README's figure); "\n" → 1.3658; "\n\n" → 1.4443; " " → 1.3792.
 */
export const README_PARAGRAPH_JOIN = '\n ';

export interface BosWindowOptions {
  /** Tokens per window, BOS included (default 512: `<s>` + 511). */
  window?: number;
  /** How many windows (default all whole ones). */
  count?: number;
  /** Text placed between paragraphs before the single encode (default README_PARAGRAPH_JOIN). */
  join?: string;
}

/**
 * The README's long-context protocol: all paragraphs of `text` joined with `join`, encoded once without
 * special tokens, cut into consecutive chunks of `window − 1` ids (crossing story boundaries, last partial
 * chunk dropped), each chunk prefixed with BOS. Unlike the app's protocol every window starts with BOS.
 */
export function bosPrefixedWindows(
  text: string,
  tokenizer: TextTokenizer,
  opts: BosWindowOptions = {},
): Int32Array[] {
  const window = opts.window ?? 512;
  const join = opts.join ?? README_PARAGRAPH_JOIN;
  if (!Number.isInteger(window) || window < 2) {
    throw badSetting('window', `window must be a whole number of at least 2 (got ${window})`);
  }
  if (tokenizer.bosId === null) throw badInput('this tokenizer has no BOS token to start each window with');
  const ids = tokenizer.encodeWithoutSpecials(firstParagraphs(text).join(join));
  const chunk = window - 1;
  const available = Math.floor(ids.length / chunk);
  const count = opts.count ?? available;
  if (!Number.isInteger(count) || count < 1 || count > available) {
    throw badInput(
      `asked for ${count} windows of ${window}, but the text gives ${available} (${ids.length} tokens): ` +
        `ask for between 1 and ${available}`,
    );
  }
  const windows: Int32Array[] = [];
  for (let i = 0; i < count; i++) {
    const w = new Int32Array(window);
    w[0] = tokenizer.bosId;
    w.set(ids.subarray(i * chunk, (i + 1) * chunk), 1);
    windows.push(w);
  }
  return windows;
}
