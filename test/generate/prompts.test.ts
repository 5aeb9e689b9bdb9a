/** Prompt suggestions and prompt files for Try it. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { promptSuggestions, readPromptsFile } from '../../main/generate/prompts.ts';
import { TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('prompt suggestions', () => {
  it("are the first words of the text's first paragraphs, however the text is chunked", async () => {
    const paragraphs = fs
      .readFileSync(TINYSTORIES_TEXT, 'utf8')
      .split(/\n\s*\n/)
      .map((p) => p.trim().split(/\s+/).filter(Boolean))
      .filter((w) => w.length >= 3)
      .map((w) => w.slice(0, 8).join(' '));
    const expected = [...new Set(paragraphs)].slice(0, 4);
    expect(expected).toHaveLength(4);
    expect(await promptSuggestions(TINYSTORIES_TEXT)).toEqual(expected);
    // chunks far shorter than a paragraph: paragraphs split across chunks come out whole
    expect(await promptSuggestions(TINYSTORIES_TEXT, 4, 8, { chunkBytes: 37 })).toEqual(expected);
  });

  it('a text with fewer paragraphs gives what it has', async () => {
    const file = path.join(tmp.dir, 'short.txt');
    fs.writeFileSync(file, 'One two three four.\n\nHi.\n\nFive six seven');
    expect(await promptSuggestions(file)).toEqual(['One two three four.', 'Five six seven']);
  });

  it('a prompts file that cannot be read says why, naming it', async () => {
    const missing = path.join(tmp.dir, 'nope.txt');
    await expect(readPromptsFile(missing)).rejects.toThrow(`${missing}: cannot be read (it does not exist)`);
  });
});
