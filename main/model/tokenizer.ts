/**
 * The model's own tokenizer, loaded from the Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) beside
 * the checkpoint. Encoding is delegated to `@huggingface/tokenizers` so ids match what the model was trained
 * and evaluated with; this module adds typed ids, clear load errors and a fast path for long texts.
 *
 * The fast path: the library runs BPE over each pre-tokenized "word", and Llama/SentencePiece-style
 * tokenizers have no pre-tokenizer, so a whole calibration file is one 800 K-character word (~8 s, no
 * cache). When no vocabulary piece has the word mark `▁` anywhere but at its start, no merge can join a
 * symbol to a following `▁…` symbol, so BPE never crosses the position before a `▁`: splitting the
 * normalized text there and running the library's BPE per piece gives the same tokens, and repeated words
 * hit the library's cache. `wordSplitIsExact` checks that condition on the loaded file; anything it cannot
 * vouch for (other models, added tokens in the text, config options that rewrite the text) uses the
 * library's own `encode` unchanged. test/model/tokenizer.int.test.ts compares both paths on the whole excerpt.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { badInput, RankwiseError } from '../core/errors.ts';
import { isMissing, unreadable } from './fs-errors.ts';

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, …) before decoding. */
  skipSpecial?: boolean;
}

export interface TextTokenizer {
  /** Ids with the tokenizer's own special-token handling (a Llama tokenizer prepends BOS). */
  encode(text: string): Int32Array;
  /** Ids without the post-processor's additions (no BOS/EOS added). */
  encodeWithoutSpecials(text: string): Int32Array;
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Largest id + 1: the number of embedding rows the ids index. */
  readonly vocabSize: number;
  /** True when encode splits text at word marks before BPE (proven equal to the library; see above). */
  readonly wordSplit: boolean;
}

/** SentencePiece's word-boundary mark, which Llama normalizers put in place of spaces. */
const WORD_MARK = '\u2581';

// Names a tokenizer without tokenizer_config.json most likely uses for its boundary tokens.
const USUAL_BOS = ['<s>', '<bos>', '<|begin_of_text|>', '<|endoftext|>'];
const USUAL_EOS = ['</s>', '<eos>', '<|end_of_text|>', '<|endoftext|>'];

export async function loadTokenizer(modelDir: string): Promise<TextTokenizer> {
  const tokenizerFile = path.join(modelDir, 'tokenizer.json');
  const configFile = path.join(modelDir, 'tokenizer_config.json');
  const tokenizerText = await readOptional(tokenizerFile);
  if (tokenizerText === null) {
    throw badInput(
      'not found: Rankwise needs the Hugging Face fast-tokenizer file tokenizer.json beside config.json; ' +
        "copy it from the model's repository (or convert the slow tokenizer with transformers)",
      tokenizerFile,
    );
  }
  const configText = await readOptional(configFile);
  const config = configText === null ? {} : parseJsonObject(configText, configFile, 'tokenizer config');
  const tokenizer = createTokenizer(
    parseJsonObject(tokenizerText, tokenizerFile, 'tokenizer'),
    config,
    tokenizerFile,
  );
  await checkFitsModel(tokenizer, modelDir, tokenizerFile);
  return tokenizer;
}

/**
 * The tokenizer and the model are opened as a pair: an id at or above the model's vocab_size would index
 * past the embedding (onnxruntime's "Gather … out of data bounds", an internal error far from the cause).
 * Refuse the pair at load, naming both files. Without a readable config.json there is nothing to check
 * against (openModel reports that folder itself).
 */
async function checkFitsModel(
  tokenizer: TextTokenizer,
  modelDir: string,
  tokenizerFile: string,
): Promise<void> {
  const configFile = path.join(modelDir, 'config.json');
  let vocab: unknown;
  try {
    vocab = (JSON.parse(await fs.promises.readFile(configFile, 'utf8')) as Record<string, unknown> | null)
      ?.vocab_size;
  } catch {
    return;
  }
  if (typeof vocab !== 'number' || !Number.isSafeInteger(vocab) || vocab <= 0) return;
  if (tokenizer.vocabSize <= vocab) return;
  const maxId = tokenizer.vocabSize - 1;
  let piece = '';
  try {
    piece = ` (${JSON.stringify(tokenizer.decode([maxId]))})`;
  } catch {
    // the id's text is only a courtesy
  }
  throw badInput(
    `token id ${maxId}${piece} is beyond the model's vocabulary: vocab_size ${vocab} in ${configFile} ` +
      `gives ids 0…${vocab - 1}; this tokenizer does not belong to this model`,
    tokenizerFile,
  );
}

/**
 * A tokenizer from already parsed JSON (tests and the generated demo model build theirs in memory).
 * `file` is only used to name the source in errors.
 */
export function createTokenizer(tokenizerJson: unknown, config: unknown = {}, file?: string): TextTokenizer {
  if (!isRecord(tokenizerJson) || !isRecord(tokenizerJson.model)) {
    throw badInput(
      'is not a Hugging Face tokenizer.json: it has no "model" object; export the tokenizer with ' +
        'transformers (tokenizer.save_pretrained) and use the tokenizer.json it writes',
      file,
    );
  }
  if (!isRecord(config)) throw badInput('tokenizer_config.json must hold a JSON object', file);
  let lib: Tokenizer;
  try {
    // The library expects these keys present (null is fine); older exports omit some of them.
    const json: Record<string, unknown> = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...tokenizerJson,
      added_tokens: Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : [],
    };
    lib = new Tokenizer(json, config);
  } catch (e) {
    throw badInput(
      `could not be loaded as a Hugging Face tokenizer (${errorText(e)}); re-export it with a recent ` +
        'transformers or tokenizers release',
      file,
    );
  }
  return wrap(lib, tokenizerJson, config, file);
}

function wrap(
  lib: Tokenizer,
  json: Record<string, unknown>,
  config: Record<string, unknown>,
  file: string | undefined,
): TextTokenizer {
  const vocab = lib.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) maxId = Math.max(maxId, id);
  const unkId = lib.model?.unk_token_id;

  const toIds = (tokens: string[]): Int32Array => {
    const ids = new Int32Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const id = lib.token_to_id(tokens[i]) ?? unkId;
      // A piece with no id means the tokenizer file is inconsistent; zeros would silently corrupt data.
      if (id === undefined) {
        throw badInput(
          `produced the piece ${JSON.stringify(tokens[i])}, which has no id: the tokenizer file is inconsistent`,
          file,
        );
      }
      ids[i] = id;
    }
    return ids;
  };

  const splitter = wordSplitIsExact(lib, json, config) ? makeWordSplitEncoder(lib, json) : null;
  const encodeWith = (text: string, addSpecial: boolean): Int32Array => {
    try {
      const tokens =
        splitter?.(text, addSpecial) ?? lib.encode(text, { add_special_tokens: addSpecial }).tokens;
      return toIds(tokens);
    } catch (e) {
      if (e instanceof RankwiseError) throw e;
      // the library only fails on what the file told it (a damaged vocabulary, merges or template)
      throw badInput(
        `could not tokenize the text (${errorText(e)}); the tokenizer file may be damaged`,
        file,
      );
    }
  };

  return {
    encode: (text) => encodeWith(text, true),
    encodeWithoutSpecials: (text) => encodeWith(text, false),
    // The library rejects an empty id list; an empty decode is simply empty text.
    decode: (ids, opts = {}) =>
      ids.length === 0 ? '' : lib.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecial ?? false }),
    bosId: boundaryId(lib, config, 'bos_token', USUAL_BOS),
    eosId: boundaryId(lib, config, 'eos_token', USUAL_EOS),
    vocabSize: maxId + 1,
    wordSplit: splitter !== null,
  };
}

/**
 * Whether splitting the normalized text before every `▁` leaves BPE's output unchanged. Needs plain
 * (deterministic, whole-piece) BPE with no pre-tokenizer, config options that do not rewrite the text, and
 * `▁` only ever at the start of a vocabulary piece or merge result, so no merge spans a split point.
 */
function wordSplitIsExact(
  lib: Tokenizer,
  json: Record<string, unknown>,
  config: Record<string, unknown>,
): boolean {
  const model = json.model as Record<string, unknown>;
  if (model.type !== 'BPE' || lib.pre_tokenizer !== null || lib.model === null) return false;
  if (model.dropout || model.ignore_merges || model.end_of_word_suffix) return false;
  if (model.continuing_subword_prefix || model.continuing_subword_suffix) return false;
  if (config.remove_space === true || config.do_lowercase_and_remove_accent === true) return false;
  if (!lib.model.tokens_to_ids.has(WORD_MARK)) return false;
  for (const piece of lib.model.tokens_to_ids.keys()) {
    if (piece.indexOf(WORD_MARK, 1) !== -1) return false;
  }
  const merges = Array.isArray(model.merges) ? model.merges : [];
  for (const merge of merges) {
    const joined = Array.isArray(merge)
      ? merge.join('')
      : typeof merge === 'string'
        ? merge.replace(' ', '')
        : null;
    if (joined === null || joined.indexOf(WORD_MARK, 1) !== -1) return false;
  }
  return true;
}

/**
 * The fast encoder: normalize, split before word marks, BPE each piece (cached by the library), then the
 * library's post-processor. Returns null for text containing an added token, which the library must split.
 */
function makeWordSplitEncoder(
  lib: Tokenizer,
  json: Record<string, unknown>,
): (text: string, addSpecial: boolean) => string[] | null {
  const normalize = (s: string): string => (lib.normalizer ? lib.normalizer(s) : s);
  const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []).filter(isRecord);
  const rawMarkers = added.map((t) => String(t.content));
  const normalizedMarkers = added
    .filter((t) => t.normalized === true)
    .map((t) => normalize(String(t.content)));
  const model = lib.model!;

  return (text, addSpecial) => {
    if (rawMarkers.some((m) => text.includes(m))) return null;
    // The library skips an empty section before normalizing, so '' yields only the special tokens.
    const normalized = text.length === 0 ? '' : normalize(text);
    if (normalizedMarkers.some((m) => normalized.includes(m))) return null;
    const tokens = normalized.length === 0 ? [] : model(splitBeforeWordMarks(normalized));
    return lib.post_processor ? lib.post_processor(tokens, null, addSpecial).tokens : tokens;
  };
}

/** "▁a▁b▁▁c" → ["▁a", "▁b", "▁", "▁c"]; a prefix before the first mark stays one piece. */
export function splitBeforeWordMarks(s: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  for (let i = s.indexOf(WORD_MARK, 1); i !== -1; i = s.indexOf(WORD_MARK, i + 1)) {
    pieces.push(s.slice(start, i));
    start = i;
  }
  pieces.push(s.slice(start));
  return pieces;
}

/**
 * BOS/EOS from tokenizer_config.json (a string or an AddedToken-like {content}); an explicit null there
 * means the model has none (Qwen2 has no BOS). Without the key, fall back to the usual special names.
 */
function boundaryId(
  lib: Tokenizer,
  config: Record<string, unknown>,
  key: 'bos_token' | 'eos_token',
  usual: string[],
): number | null {
  const value = config[key];
  if (value === null) return null;
  const content = typeof value === 'string' ? value : isRecord(value) ? value.content : undefined;
  if (typeof content === 'string') return lib.token_to_id(content) ?? null;
  const special = lib.get_added_tokens_decoder();
  for (const name of usual) {
    for (const [id, token] of special) if (token.special && token.content === name) return id;
  }
  return null;
}

async function readOptional(file: string): Promise<string | null> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'EISDIR') throw badInput('is a directory; expected a JSON file', file);
    if (isMissing(e)) return null;
    throw unreadable(e, file);
  }
}

function parseJsonObject(text: string, file: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw badInput(`is not valid JSON (${errorText(e)}); the ${what} file is damaged: re-download it`, file);
  }
  if (!isRecord(value)) throw badInput(`must hold a JSON object (the ${what}), not ${describe(value)}`, file);
  return value;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  return Array.isArray(v) ? 'an array' : v === null ? 'null' : `a ${typeof v}`;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
