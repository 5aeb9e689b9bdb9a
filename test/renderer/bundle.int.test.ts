/**
 * The renderer bundle runs in a sandboxed page (Electron) or a plain browser tab: it must carry no Node
 * module, no engine, and load its assets by relative URL from both app://rankwise/ and 127.0.0.1.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'vite';
import { REPO_ROOT, tempDir } from '../helpers/paths.ts';
import { rendererBoundary } from '../../vite.config.ts';

let outDir: string;
let js: { file: string; text: string }[];
let html: string;

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : [p];
  });
}

beforeAll(async () => {
  outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rankwise-renderer-'));
  // vitest sets NODE_ENV=test, which Vite honours with React’s development build: check what ships
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({
      configFile: path.join(REPO_ROOT, 'vite.config.ts'),
      logLevel: 'silent',
      build: { outDir, emptyOutDir: true },
    });
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
  js = filesUnder(outDir)
    .filter((f) => f.endsWith('.js'))
    .map((file) => ({ file, text: fs.readFileSync(file, 'utf8') }));
  html = fs.readFileSync(path.join(outDir, 'index.html'), 'utf8');
});

afterAll(() => {
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

describe('the renderer bundle', () => {
  it('is built, in production mode, at a reasonable size', () => {
    expect(js.length).toBeGreaterThan(0);
    const bytes = js.reduce((n, f) => n + Buffer.byteLength(f.text), 0);
    // React, MUI, Emotion and the used parts of d3 come to about 0.7 MB minified
    expect(bytes).toBeLessThan(1_000_000);
    expect(js.some((f) => f.text.includes('Download the React DevTools'))).toBe(false);
  });

  it('holds no CommonJS require, no Node built-in, no onnxruntime and no process.binding', () => {
    for (const { file, text } of js) {
      const name = path.basename(file);
      expect(text, name).not.toMatch(/\brequire\(/);
      expect(text, name).not.toMatch(/onnxruntime/);
      expect(text, name).not.toMatch(/process\.binding/);
      // an import of node:… in any form: static, re-export or dynamic
      expect(text, name).not.toMatch(/(?:\bfrom\s*|\bimport\s*\(?\s*)["']node:/);
    }
  });

  it('references only relative assets from index.html, and no inline script', () => {
    // data: URLs (the empty favicon) are inline, not fetched
    const urls = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)]
      .map((m) => m[1])
      .filter((u) => !u.startsWith('data:'));
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) {
      expect(url, url).toMatch(/^\.\//);
      expect(fs.existsSync(path.join(outDir, url))).toBe(true);
    }
    // the CSP allows scripts from 'self' only
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
      expect(m[1]).toMatch(/\bsrc=/);
      expect(m[2].trim()).toBe('');
    }
  });
});

describe('the renderer boundary in vite.config.ts', () => {
  it.each(['node:fs', 'path', 'onnxruntime-node', 'electron'])(
    'fails a build that imports %s',
    async (mod) => {
      const { dir, cleanup } = tempDir('rankwise-boundary-');
      try {
        fs.writeFileSync(path.join(dir, 'index.html'), '<script type="module" src="./main.js"></script>');
        fs.writeFileSync(path.join(dir, 'main.js'), `import * as m from '${mod}';\nconsole.log(m);\n`);
        const attempt = build({
          configFile: false,
          root: dir,
          logLevel: 'silent',
          plugins: [rendererBoundary()],
          build: { outDir: path.join(dir, 'out'), write: false },
        });
        await expect(attempt).rejects.toThrow(new RegExp(`imports '${mod}'`));
      } finally {
        cleanup();
      }
    },
  );
});
