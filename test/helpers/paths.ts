import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Repository root (this file lives in test/helpers/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Real models and texts, beside the checkout (CI puts ../shared there too). */
export const SHARED_TESTDATA = path.resolve(REPO_ROOT, '..', 'shared', 'testdata');
export const STORIES_DIR = path.join(SHARED_TESTDATA, 'stories260K-llama');
export const TINYSTORIES_TEXT = path.join(SHARED_TESTDATA, 'text', 'tinystories_valid_excerpt.txt');

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'rankwise-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
