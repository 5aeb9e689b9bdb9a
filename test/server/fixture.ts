/**
 * Folders for the browser-mode tests, under one temporary directory:
 *   ab/         the root: model/, data.txt, sub/inner.txt, and links out of it (escape → ../outside,
 *               escape-file → ../outside/secret.txt, dangling → ../outside/new-export, which does not exist)
 *   abc/        a sibling whose name starts with the root's (`/x/abc` is not inside `/x/ab`)
 *   outside/    model/, secret.txt: what the server must never reach
 *   static/     a stand-in renderer build, with a link (leak.txt) out of it
 *   unbuilt/    a static folder without index.html
 *   package.json  beside static/, for traversal attempts to find
 */
import fs from 'node:fs';
import path from 'node:path';
import { vi } from 'vitest';
import { tempDir } from '../helpers/paths.ts';

export const SECRET = 'the contents of a file outside every root';
export const INDEX_HTML = '<!doctype html><title>Rankwise</title><script src="/app.js"></script>';

export interface Folders {
  base: string;
  root: string;
  sibling: string;
  outside: string;
  staticDir: string;
  unbuilt: string;
  cleanup: () => void;
}

export function makeFolders(): Folders {
  const tmp = tempDir('rankwise-server-');
  // Real paths throughout, so expectations hold where the temp folder itself sits behind a link (macOS).
  const base = fs.realpathSync(tmp.dir);
  const dir = (...parts: string[]) => {
    const p = path.join(base, ...parts);
    fs.mkdirSync(p, { recursive: true });
    return p;
  };
  const file = (content: string, ...parts: string[]) => fs.writeFileSync(path.join(base, ...parts), content);

  const root = dir('ab');
  dir('ab', 'model');
  file('{}', 'ab', 'model', 'config.json');
  file('Once upon a time.\n', 'ab', 'data.txt');
  dir('ab', 'sub');
  file('inner', 'ab', 'sub', 'inner.txt');
  const sibling = dir('abc');
  dir('abc', 'model');
  const outside = dir('outside');
  dir('outside', 'model');
  file(SECRET, 'outside', 'secret.txt');
  fs.symlinkSync(path.join('..', 'outside'), path.join(root, 'escape'));
  fs.symlinkSync(path.join('..', 'outside', 'secret.txt'), path.join(root, 'escape-file'));
  fs.symlinkSync(path.join('..', 'outside', 'new-export'), path.join(root, 'dangling'));

  const staticDir = dir('static');
  file(INDEX_HTML, 'static', 'index.html');
  file('console.log("renderer");\n', 'static', 'app.js');
  file('body { margin: 0 }\n', 'static', 'style.css');
  dir('static', 'assets');
  file('{"a":1}', 'static', 'assets', 'data.json');
  fs.symlinkSync(path.join('..', 'outside', 'secret.txt'), path.join(staticDir, 'leak.txt'));
  // Beside the build, where `/../package.json` would land if traversal got through.
  file(`{"name": "rankwise", "secret": "${SECRET}"}`, 'package.json');
  const unbuilt = dir('unbuilt');

  return { base, root, sibling, outside, staticDir, unbuilt, cleanup: tmp.cleanup };
}

/** Captures what the command writes while it keeps running. */
export function capture() {
  const out = { stdout: '', stderr: '' };
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.stderr += String(chunk);
    return true;
  });
  return out;
}

export async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
