import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { RankwiseError } from '../../main/core/errors.ts';
import { loadTokenizer } from '../../main/model/tokenizer.ts';
import type { TextTokenizer } from '../../main/model/tokenizer.ts';
import { bosPrefixedWindows, firstParagraphs, README_PARAGRAPH_JOIN } from '../../main/data/paragraphs.ts';
import { STORIES_DIR, TINYSTORIES_TEXT } from '../helpers/paths.ts';

/** FNV-1a over the ids: pins a long id sequence in one number. */
function fingerprint(windows: Int32Array[]): string {
  let h = 0x811c9dc5;
  for (const w of windows) {
    for (const id of w) h = Math.imul(h ^ id, 0x01000193) >>> 0;
  }
  return h.toString(16);
}

let tok: TextTokenizer;
let text: string;
/** Every paragraph of the excerpt joined the README's way and encoded once, shared by the tests below. */
let joinedIds: Int32Array;
beforeAll(async () => {
  tok = await loadTokenizer(STORIES_DIR);
  text = fs.readFileSync(TINYSTORIES_TEXT, 'utf8');
  joinedIds = tok.encodeWithoutSpecials(firstParagraphs(text).join(README_PARAGRAPH_JOIN));
});

describe('firstParagraphs', () => {
  it('takes trimmed non-empty lines', () => {
    expect(firstParagraphs('  a \n\n\t\nb\r\n\n c', 2)).toEqual(['a', 'b']);
    expect(firstParagraphs('  a \n\n\t\nb\r\n\n c')).toEqual(['a', 'b', 'c']);
    expect(firstParagraphs('\n\n')).toEqual([]);
  });

  it("reproduces the README's 29,256 predicted tokens over the first 300 paragraphs", () => {
    const paragraphs = firstParagraphs(text, 300);
    expect(paragraphs).toHaveLength(300);
    const predicted = paragraphs.reduce((sum, p) => sum + tok.encode(p).length - 1, 0);
    expect(predicted).toBe(29_256);
    // Untrimmed lines (some end in a space) would give 29,302: the trim is what the README did.
    const untrimmed = text
      .split('\n')
      .filter((l) => l.trim().length > 0)
      .slice(0, 300);
    expect(untrimmed.reduce((sum, p) => sum + tok.encode(p).length - 1, 0)).toBe(29_302);
  });
});

describe('bosPrefixedWindows', () => {
  it("reproduces the README's 60 windows of <s> + 511 (30,660 predicted tokens)", () => {
    const windows = bosPrefixedWindows(text, tok, { count: 60 });
    expect(windows).toHaveLength(60);
    expect(windows.every((w) => w.length === 512 && w[0] === 1)).toBe(true);
    expect(windows.reduce((sum, w) => sum + w.length - 1, 0)).toBe(30_660);
    // These exact ids scored mean NLL 1.4218 in an independent float64 forward pass, the README's figure.
    expect(fingerprint(windows)).toBe('75ff8592');
  });

  it('joins the text exactly as encoding each paragraph alone with a newline token between', () => {
    const paragraphs = firstParagraphs(text);
    const joined = joinedIds;
    const newline = tok.encodeWithoutSpecials('\n').at(-1)!;
    const pieces: number[] = [];
    for (const p of paragraphs) {
      if (pieces.length > 0) pieces.push(newline);
      for (const id of tok.encodeWithoutSpecials(p)) pieces.push(id);
    }
    expect(joined.length).toBe(pieces.length);
    expect(joined.every((id, i) => id === pieces[i])).toBe(true);
  });

  it('continues across windows without gaps and takes all whole windows by default', () => {
    const all = bosPrefixedWindows(text, tok);
    expect(all).toHaveLength(Math.floor(joinedIds.length / 511));
    expect(Array.from(all[1].subarray(1))).toEqual(Array.from(joinedIds.subarray(511, 1022)));
  });

  it('takes another join and window size as parameters', () => {
    // A short text keeps this cheap: the protocol does not care how long the text is.
    const excerpt = text.slice(0, 5000);
    const windows = bosPrefixedWindows(excerpt, tok, { join: '\n', window: 128, count: 3 });
    const ids = tok.encodeWithoutSpecials(firstParagraphs(excerpt).join('\n'));
    expect(windows.map((w) => w.length)).toEqual([128, 128, 128]);
    expect(Array.from(windows[2])).toEqual([1, ...ids.subarray(254, 381)]);
  });

  it('rejects more windows than the text gives', () => {
    const error = (() => {
      try {
        bosPrefixedWindows('Once upon a time.', tok, { count: 1 });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(RankwiseError);
    expect((error as RankwiseError).message).toMatch(/asked for 1 windows of 512, but the text gives 0/);
  });
});
