import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { RankwiseError } from '../../main/core/errors.ts';
import { createTokenizer, loadTokenizer, splitBeforeWordMarks } from '../../main/model/tokenizer.ts';
import type { TextTokenizer } from '../../main/model/tokenizer.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

interface Reference {
  prompt: string;
  input_ids: number[];
  greedy_64_from_bos_ids: number[];
  greedy_64_from_bos_text: string;
}

const reference = JSON.parse(
  fs.readFileSync(path.join(STORIES_DIR, 'reference_outputs.json'), 'utf8'),
) as Reference;
const tokenizerJson = JSON.parse(fs.readFileSync(path.join(STORIES_DIR, 'tokenizer.json'), 'utf8')) as Record<
  string,
  unknown
>;
const tokenizerConfig = JSON.parse(
  fs.readFileSync(path.join(STORIES_DIR, 'tokenizer_config.json'), 'utf8'),
) as Record<string, unknown>;

/** The library's own encode, the ground truth the fast path must reproduce. */
function libraryIds(text: string, addSpecial = true): number[] {
  return new Tokenizer(structuredClone(tokenizerJson), tokenizerConfig).encode(text, {
    add_special_tokens: addSpecial,
  }).ids;
}

/** Expect a bad-input RankwiseError naming `file` whose message contains `fragment`. */
async function expectBadInput(run: () => unknown, file: string, fragment: string | RegExp): Promise<void> {
  const error = await Promise.resolve()
    .then(run)
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(RankwiseError);
  const e = error as RankwiseError;
  expect(e.kind).toBe('bad-input');
  expect(e.file).toBe(file);
  expect(e.message).toMatch(fragment);
}

let tok: TextTokenizer;
beforeAll(async () => {
  tok = await loadTokenizer(STORIES_DIR);
});

describe('stories260K tokenizer', () => {
  it('reproduces the reference prompt ids, BOS included', () => {
    expect(Array.from(tok.encode(reference.prompt))).toEqual(reference.input_ids);
    expect(Array.from(tok.encodeWithoutSpecials(reference.prompt))).toEqual(reference.input_ids.slice(1));
  });

  it('decodes the greedy reference continuation', () => {
    const text = tok.decode(reference.greedy_64_from_bos_ids, { skipSpecial: true });
    expect(text).toBe(reference.greedy_64_from_bos_text);
    expect(tok.decode(Int32Array.from(reference.input_ids), { skipSpecial: true })).toBe(reference.prompt);
    expect(tok.decode([])).toBe('');
    expect(tok.decode([1, 403])).toBe('<s> Once');
  });

  it('reports its special ids and size, and takes the word-split path', () => {
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    expect(tok.vocabSize).toBe(512);
    expect(tok.wordSplit).toBe(true);
  });

  it('matches the library on awkward inputs', () => {
    const cases = [
      '',
      ' ',
      '   ',
      'a',
      ' a',
      'a ',
      'a  b',
      '\n',
      '\n\nx\n',
      'tab\there',
      'héllo wörld 😀 ∑ “quoted”',
      'x▁y ▁ ▁▁z',
      '<s>hi</s> there',
      'Once upon a time<s>',
    ];
    for (const text of cases) {
      expect(Array.from(tok.encode(text)), JSON.stringify(text)).toEqual(libraryIds(text));
      expect(Array.from(tok.encodeWithoutSpecials(text)), JSON.stringify(text)).toEqual(
        libraryIds(text, false),
      );
    }
  });

  it('splits normalized text before each word mark', () => {
    expect(splitBeforeWordMarks('▁a▁b▁▁c')).toEqual(['▁a', '▁b', '▁', '▁c']);
    expect(splitBeforeWordMarks('ab▁c')).toEqual(['ab', '▁c']);
    expect(splitBeforeWordMarks('▁')).toEqual(['▁']);
  });
});

describe('the whole TinyStories excerpt as one string', () => {
  it('tokenizes fast and exactly as the library does', () => {
    const text = fs.readFileSync(TINYSTORIES_TEXT, 'utf8');
    const start = performance.now();
    const ids = tok.encode(text);
    const seconds = (performance.now() - start) / 1000;
    expect(ids.length).toBe(393_019);
    expect(ids[0]).toBe(1);
    // A sanity guard against a pathological slowdown, not a benchmark (the fast path takes ~1 s here).
    expect(seconds).toBeLessThan(60);
    // The library on the whole file takes ~8 s: worth it once, as the proof the fast path is exact.
    const expected = libraryIds(text);
    expect(ids.length).toBe(expected.length);
    // Index of the first disagreement (-1: none); toEqual on 393 K elements costs seconds.
    expect(ids.findIndex((id, i) => id !== expected[i])).toBe(-1);
  });
});

describe('tokenizers the fast path cannot vouch for', () => {
  it('falls back to the library when a piece has an inner word mark', () => {
    const json = structuredClone(tokenizerJson);
    const model = json.model as { vocab: Record<string, number> };
    model.vocab['a▁b'] = 512;
    const odd = createTokenizer(json, tokenizerConfig);
    expect(odd.wordSplit).toBe(false);
    expect(Array.from(odd.encode(reference.prompt))).toEqual(reference.input_ids);
  });

  it('falls back when the config rewrites the text', () => {
    const odd = createTokenizer(structuredClone(tokenizerJson), { ...tokenizerConfig, remove_space: true });
    expect(odd.wordSplit).toBe(false);
  });
});

describe('loading', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  function modelDir(name: string, files: Record<string, string>): string {
    const dir = path.join(tmp.dir, name);
    fs.mkdirSync(dir);
    for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), content);
    return dir;
  }

  it('works without tokenizer_config.json, finding BOS/EOS by their usual names', async () => {
    const dir = modelDir('no-config', { 'tokenizer.json': JSON.stringify(tokenizerJson) });
    const t = await loadTokenizer(dir);
    expect(t.bosId).toBe(1);
    expect(t.eosId).toBe(2);
    expect(Array.from(t.encode(reference.prompt))).toEqual(reference.input_ids);
  });

  it('takes an explicit null BOS in the config as "no BOS"', () => {
    const t = createTokenizer(structuredClone(tokenizerJson), { ...tokenizerConfig, bos_token: null });
    expect(t.bosId).toBeNull();
  });

  it('rejects a folder without tokenizer.json, naming the file', async () => {
    const dir = modelDir('empty', {});
    await expectBadInput(
      () => loadTokenizer(dir),
      path.join(dir, 'tokenizer.json'),
      /not found.*tokenizer\.json/,
    );
  });

  it('rejects a tokenizer.json that is not JSON', async () => {
    const dir = modelDir('broken', { 'tokenizer.json': '{"model": {' });
    await expectBadInput(() => loadTokenizer(dir), path.join(dir, 'tokenizer.json'), /is not valid JSON/);
  });

  it('rejects JSON that is not a tokenizer', async () => {
    const dir = modelDir('not-tokenizer', { 'tokenizer.json': '{"vocab_size": 512}' });
    await expectBadInput(() => loadTokenizer(dir), path.join(dir, 'tokenizer.json'), /has no "model" object/);
    const arr = modelDir('array', { 'tokenizer.json': '[1, 2]' });
    await expectBadInput(
      () => loadTokenizer(arr),
      path.join(arr, 'tokenizer.json'),
      /must hold a JSON object/,
    );
  });

  it('rejects a model the library cannot build', async () => {
    const dir = modelDir('unknown-model', { 'tokenizer.json': '{"model": {"type": "Nonsense"}}' });
    await expectBadInput(
      () => loadTokenizer(dir),
      path.join(dir, 'tokenizer.json'),
      /could not be loaded as a Hugging Face tokenizer \(Unknown TokenizerModel type: Nonsense\)/,
    );
  });

  it('rejects a damaged tokenizer_config.json, naming it', async () => {
    const dir = modelDir('bad-config', {
      'tokenizer.json': JSON.stringify(tokenizerJson),
      'tokenizer_config.json': 'bos_token: <s>',
    });
    await expectBadInput(
      () => loadTokenizer(dir),
      path.join(dir, 'tokenizer_config.json'),
      /is not valid JSON/,
    );
  });
});
