/**
 * Issue 14, item 9: the engine's messages reach the app too, so outside main/cli no string of main/
 * names a CLI flag; a message names a setting by its contract field path and each face names it in its
 * own words (main/cli/flags.ts: the flag; renderer/app/errors.ts: the control).
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/paths.ts';

/** `--name`, but not a CSS custom property (`--bg: …`, `var(--bg)`: the HTML report's style sheet). */
const FLAG = /(?<![\w-]|var\()--[a-z][a-z0-9-]*(?![a-z0-9-]|\s*:)/;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const file = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(file);
    return e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [file] : [];
  });
}

/** Every string literal and template text (comments are not messages) that names a flag. */
function flagsIn(file: string): string[] {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (
      ts.isStringLiteral(node) ||
      ts.isNoSubstitutionTemplateLiteral(node) ||
      ts.isTemplateHead(node) ||
      ts.isTemplateMiddle(node) ||
      ts.isTemplateTail(node)
    ) {
      const flag = FLAG.exec(node.text);
      if (flag) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart());
        found.push(
          `${path.relative(REPO_ROOT, file)}:${line + 1}: ${flag[0]} in ${JSON.stringify(node.text)}`,
        );
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe("the engine's messages", () => {
  it('name no CLI flag outside main/cli', () => {
    const main = path.join(REPO_ROOT, 'main');
    const cli = path.join(main, 'cli') + path.sep;
    const files = sourceFiles(main).filter((f) => !f.startsWith(cli));
    expect(files.length).toBeGreaterThan(50);
    expect(files.flatMap(flagsIn)).toEqual([]);
  });

  it('the check finds a flag in a message and passes a style sheet', () => {
    expect(FLAG.test('use a smaller --window')).toBe(true);
    expect(FLAG.test('--kv-fraction must be in (0, 1]')).toBe(true);
    expect(FLAG.test('(--calib-windows, --window)')).toBe(true);
    expect(FLAG.test(':root { --bg: #fff; } body { color: var(--fg); }')).toBe(false);
    expect(FLAG.test('an error budget of 0.05; x--y')).toBe(false);
  });
});
