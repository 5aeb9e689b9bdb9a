/**
 * Tokenizers for synthetic models, in the Hugging Face `tokenizer.json` formats real checkpoints ship:
 * a Llama-2-style SentencePiece BPE with byte fallback for the llama family, and GPT-2's byte-level BPE.
 * Both can encode any text (bytes are always in the vocabulary) and decode it back exactly; the merges
 * below only make common English shorter.
 */

/** Frequent English pieces, in merge priority order; each becomes one token while the vocabulary lasts. */
const SUFFIXES = 'th he in ing er an re on at en nd st ed es ly ou'.split(' ');
const WORDS = (
  'the and to a was he she it of in that his her you with for on said they is be had at as but not have ' +
  'this one all from we there were time day up so little very big play went saw what when out then them ' +
  'do can like go happy friend friends mom dad girl boy named Once upon The She He They One It looked ' +
  'wanted loved asked help tree park ball dog cat sun home could would about into more some over after ' +
  'back just know good new first people also because how our make made see look water long fun together ' +
  'found smiled thought every where something toy run away came other only which their will did again ' +
  'too felt sad red blue bird fish garden mother father sister brother house world small great never ' +
  'always before'
).split(' ');

export interface SyntheticTokenizer {
  /** tokenizer.json contents. */
  json: Record<string, unknown>;
  /** tokenizer_config.json contents. */
  config: Record<string, unknown>;
  /** Number of ids the tokenizer uses (all ids < size). */
  size: number;
  bosTokenId: number;
  eosTokenId: number;
}

/** Applies `merges` (rank = index) to a sequence of symbols the way BPE does: best-ranked pair first. */
function applyBpe(symbols: string[], ranks: Map<string, number>): string[] {
  const pieces = [...symbols];
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < pieces.length; i++) {
      const r = ranks.get(`${pieces[i]} ${pieces[i + 1]}`);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) return pieces;
    pieces.splice(best, 2, pieces[best] + pieces[best + 1]);
  }
}

/**
 * Makes each word a single token: encode it with the merges so far, then append merges that join the
 * resulting pieces left to right. Appended merges rank below all earlier ones, so earlier words keep
 * their tokenisation, and every merge's operands already exist, so stopping at `limit` ids at any point
 * still leaves a consistent BPE.
 */
function addWords(
  words: readonly string[],
  vocab: Map<string, number>,
  merges: [string, string][],
  limit: number,
): void {
  const ranks = new Map<string, number>();
  for (const word of words) {
    const pieces = applyBpe([...word], ranks);
    if (!pieces.every((p) => vocab.has(p))) continue; // a symbol was cut by the limit
    while (pieces.length > 1) {
      const joined = pieces[0] + pieces[1];
      if (!vocab.has(joined)) {
        if (vocab.size >= limit) return;
        vocab.set(joined, vocab.size);
      }
      ranks.set(`${pieces[0]} ${pieces[1]}`, merges.length);
      merges.push([pieces[0], pieces[1]]);
      pieces.splice(0, 2, joined);
    }
  }
}

const SPIECE_SPACE = '\u2581'; // ▁

function specialToken(id: number, content: string, normalized: boolean): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized, special: true };
}

/**
 * Llama-2 layout: `<unk>`, `<s>`, `</s>`, the 256 byte pieces `<0x00>`…`<0xFF>`, `▁`, printable ASCII,
 * then merged English pieces, capped at `limit` ids (at least 259).
 */
export function llamaTokenizer(limit: number, maxPositions: number): SyntheticTokenizer {
  const vocab = new Map<string, number>();
  for (const s of ['<unk>', '<s>', '</s>']) vocab.set(s, vocab.size);
  for (let b = 0; b < 256; b++) vocab.set(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, vocab.size);
  const singles = [SPIECE_SPACE];
  for (let c = 0x21; c <= 0x7e; c++) singles.push(String.fromCharCode(c));
  for (const s of singles) if (vocab.size < limit) vocab.set(s, vocab.size);
  const merges: [string, string][] = [];
  const words = [...SUFFIXES, ...WORDS.map((w) => SPIECE_SPACE + w)];
  addWords(words, vocab, merges, limit);

  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      specialToken(0, '<unk>', false),
      specialToken(1, '<s>', false),
      specialToken(2, '</s>', false),
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPIECE_SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPIECE_SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPIECE_SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
  const config = {
    tokenizer_class: 'LlamaTokenizerFast',
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    add_bos_token: true,
    add_eos_token: false,
    legacy: true,
    model_max_length: maxPositions,
    clean_up_tokenization_spaces: false,
  };
  return { json, config, size: vocab.size, bosTokenId: 1, eosTokenId: 2 };
}

/**
 * GPT-2's reversible byte → printable-character map: printable Latin-1 bytes stand for themselves, the
 * rest are shifted to U+0100 onwards. Returned in GPT-2's vocabulary order (printable bytes first).
 */
export function byteLevelAlphabet(): { byte: number; char: string }[] {
  const out: { byte: number; char: string }[] = [];
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  for (let b = 0; b < 256; b++) if (printable(b)) out.push({ byte: b, char: String.fromCharCode(b) });
  let n = 0;
  for (let b = 0; b < 256; b++)
    if (!printable(b)) out.push({ byte: b, char: String.fromCharCode(256 + n++) });
  return out;
}

const ENDOFTEXT = '<|endoftext|>';

/** GPT-2 layout: 256 byte symbols, merged English pieces, then `<|endoftext|>` as the last id. */
export function gpt2Tokenizer(limit: number, maxPositions: number): SyntheticTokenizer {
  const alphabet = byteLevelAlphabet();
  const space = alphabet.find((a) => a.byte === 0x20)!.char; // Ġ
  const vocab = new Map<string, number>();
  for (const a of alphabet) vocab.set(a.char, vocab.size);
  const merges: [string, string][] = [];
  const words = [...SUFFIXES, ...WORDS.map((w) => space + w), ...WORDS.filter((w) => /^[A-Z]/.test(w))];
  addWords(words, vocab, merges, limit - 1);
  const eot = vocab.size;
  vocab.set(ENDOFTEXT, eot);

  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [specialToken(eot, ENDOFTEXT, true)],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel, trim_offsets: false },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
  const config = {
    tokenizer_class: 'GPT2Tokenizer',
    add_prefix_space: false,
    bos_token: ENDOFTEXT,
    eos_token: ENDOFTEXT,
    unk_token: ENDOFTEXT,
    model_max_length: maxPositions,
    clean_up_tokenization_spaces: false,
  };
  return { json, config, size: vocab.size, bosTokenId: eot, eosTokenId: eot };
}
