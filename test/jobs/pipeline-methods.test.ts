/**
 * The compress pipeline asks methods through their hooks (methods/types.ts), never by id: no file of
 * main/jobs names a method. Methods are registered in main/methods/index.ts alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { METHOD_IDS } from '../../main/methods/index.ts';
import { REPO_ROOT } from '../helpers/paths.ts';

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|mjs)$/.test(e.name) ? [p] : [];
  });
}

describe('the compress pipeline', () => {
  it('names no method id in main/jobs', () => {
    const id = new RegExp(`(['"\`])(${METHOD_IDS.join('|')})\\1`);
    const files = sources(path.join(REPO_ROOT, 'main', 'jobs'));
    expect(files.map((f) => path.relative(REPO_ROOT, f))).toContain('main/jobs/compress.ts');
    expect(files.some((f) => f.includes(`${path.sep}stages${path.sep}`))).toBe(true);
    const hits = files.flatMap((f) =>
      fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .flatMap((line, i) =>
          id.test(line) ? [`${path.relative(REPO_ROOT, f)}:${i + 1}: ${line.trim()}`] : [],
        ),
    );
    expect(hits).toEqual([]);
  });

  it('is the regex that would catch one', () => {
    const id = new RegExp(`(['"\`])(${METHOD_IDS.join('|')})\\1`);
    expect(id.test("if (s.method === 'stief') {")).toBe(true);
    expect(id.test('const learning = s.stief !== undefined;')).toBe(false);
  });
});
