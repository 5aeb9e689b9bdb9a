/**
 * The engine's layer order (eslint.config.js, docs/ARCHITECTURE.md "Layers"): the lint rules reject an
 * upward import, and no file of the app takes part in an import cycle, type-only imports included.
 */
import { ESLint } from 'eslint';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/paths.ts';

async function lint(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: REPO_ROOT });
  const [result] = await eslint.lintText(code, { filePath: path.join(REPO_ROOT, file) });
  return result.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

const use = (spec: string) => `import { x } from '${spec}';\nexport const y = x;\n`;

describe('the layer rules', () => {
  it('reject an import of a higher layer and accept a lower one', async () => {
    expect((await lint('main/model/x.ts', use('../jobs/manager.ts'))).join('\n')).toMatch(
      /main\/model may import only core, contract/,
    );
    expect((await lint('main/runtime/graphs/x.ts', use('../../methods/index.ts'))).join('\n')).toMatch(
      /main\/runtime may import only/,
    );
    expect(await lint('main/jobs/x.ts', use('../model/types.ts'))).toEqual([]);
    expect(await lint('main/methods/x.ts', use('../../native-kernels/index.ts'))).toEqual([]);
  });

  it('keep core/ free of the rest of the app and of Node, so the renderer can use it', async () => {
    expect((await lint('main/core/x.ts', use('../model/types.ts'))).join('\n')).toMatch(
      /main\/core may import only itself/,
    );
    expect((await lint('main/core/x.ts', use('node:fs'))).join('\n')).toMatch(/runs in the renderer too/);
    expect(await lint('main/core/x.ts', use('./errors.ts'))).toEqual([]);
  });

  it('keep native-kernels/ free of the app', async () => {
    expect((await lint('native-kernels/x.ts', use('../main/core/errors.ts'))).join('\n')).toMatch(
      /native-kernels\/ imports nothing of the app/,
    );
  });

  it('let the renderer import values from main/core but not from the engine', async () => {
    expect(await lint('renderer/app/x.ts', use('../../main/core/format.ts'))).toEqual([]);
    expect((await lint('renderer/app/x.ts', use('../../main/jobs/manager.ts'))).join('\n')).toMatch(
      /only types/,
    );
  });
});

/** Every relative import of a source file, type-only ones included, resolved to a repository path. */
function importsOf(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    out.push(path.resolve(path.dirname(file), m[1]));
  }
  for (const m of src.matchAll(/import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)) {
    out.push(path.resolve(path.dirname(file), m[1]));
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'build') out.push(...sourceFiles(p));
    } else if (/\.(ts|tsx)$/.test(e.name)) out.push(p);
  }
  return out;
}

/** Strongly connected components of more than one file (Tarjan's algorithm): the import cycles. */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc.map((f) => path.relative(REPO_ROOT, f)).sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('imports', () => {
  it('form no cycle anywhere in the app', () => {
    const files = ['main', 'native-kernels', 'electron', 'renderer'].flatMap((d) =>
      sourceFiles(path.join(REPO_ROOT, d)),
    );
    const graph = new Map(files.map((f) => [f, importsOf(f)]));
    expect(cycles(graph)).toEqual([]);
  });

  it('are found by the cycle finder (a planted cycle)', () => {
    const graph = new Map([
      ['/a', ['/b']],
      ['/b', ['/c']],
      ['/c', ['/a']],
      ['/d', ['/a']],
    ]);
    expect(cycles(graph)).toEqual([['/a', '/b', '/c'].map((f) => path.relative(REPO_ROOT, f))]);
  });
});
