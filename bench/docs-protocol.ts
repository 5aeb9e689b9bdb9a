/**
 * The docs protocol's texts (docs/methods.md): the TinyStories excerpt split at the paragraph break
 * nearest its middle, the first half to calibrate on, the second to evaluate on.
 */
import fs from 'node:fs';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
export const SHARED = path.resolve(here, '..', '..', 'shared', 'testdata');
export const STORIES = path.join(SHARED, 'stories260K-llama');
/** The TinyStories excerpt the docs protocol splits (and the benches read whole). */
export const STORIES_TEXT = path.join(SHARED, 'text', 'tinystories_valid_excerpt.txt');

/** Writes calib.txt and eval.txt into `dir` and returns their paths. */
export function docsProtocolTexts(dir: string): { calib: string; evalFile: string } {
  const text = fs.readFileSync(STORIES_TEXT, 'utf8');
  const cut = text.indexOf('\n\n', Math.floor(text.length / 2));
  const calib = path.join(dir, 'calib.txt');
  const evalFile = path.join(dir, 'eval.txt');
  fs.writeFileSync(calib, text.slice(0, cut));
  fs.writeFileSync(evalFile, text.slice(cut + 2));
  return { calib, evalFile };
}
