/** When `rankwise serve` builds the wizard, and how it swaps a build in (with stand-in builders). */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import {
  buildState,
  builtAt,
  DEFAULT_STATIC_DIR,
  ensureRendererBuild,
  newestMtime,
  RENDERER_INPUTS,
} from '../../main/cli/renderer-build.ts';
import { REPO_ROOT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-renderer-build-');
afterAll(() => tmp.cleanup());

let count = 0;
/** A fresh case folder: src/ (the inputs, at `srcTime` seconds) and out/ (where the build goes). */
function setup(srcTime = 1000) {
  const dir = path.join(tmp.dir, `case-${count++}`);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'sub', 'a.ts'), 'a');
  fs.writeFileSync(path.join(src, 'b.ts'), 'b');
  for (const p of [path.join(src, 'sub', 'a.ts'), path.join(src, 'b.ts'), path.join(src, 'sub'), src]) {
    fs.utimesSync(p, srcTime, srcTime);
  }
  return { dir, src, out: path.join(dir, 'dist', 'renderer') };
}

function writeBuild(out: string, label: string, time?: number) {
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'index.html'), `<!doctype html><title>${label}</title>`);
  if (time !== undefined) fs.utimesSync(path.join(out, 'index.html'), time, time);
}

const fakeBuild = (label: string) => async (outDir: string) => writeBuild(outDir, label);
const noLog = () => {};

describe('buildState', () => {
  it.each([
    [null, 5, 'missing'],
    [null, null, 'missing'],
    [10, 5, 'fresh'],
    [10, 10, 'fresh'],
    [10, 11, 'stale'],
    [10, null, 'fresh'],
  ] as const)('a build at %j with inputs at %j is %s', (built, newest, state) => {
    expect(buildState(built, newest)).toBe(state);
  });
});

describe('newestMtime', () => {
  it('finds the newest file or folder under the inputs, and skips missing ones', () => {
    const { src } = setup(1000);
    expect(newestMtime([src])).toBe(1000_000);
    expect(newestMtime([path.join(src, 'nope')])).toBeNull();
    fs.utimesSync(path.join(src, 'sub', 'a.ts'), 2000, 2000);
    expect(newestMtime([src, path.join(src, 'nope')])).toBe(2000_000);
  });

  it('sees a removed file through its folder', () => {
    const { src } = setup(1000);
    fs.rmSync(path.join(src, 'sub', 'a.ts'));
    expect(newestMtime([src])).toBeGreaterThan(1000_000);
  });
});

describe('the inputs', () => {
  it('are the renderer, the engine folders it may import values from, and the build configuration', () => {
    const rel = RENDERER_INPUTS.map((p) => path.relative(REPO_ROOT, p));
    expect(rel).toEqual(expect.arrayContaining(['renderer', 'main/core', 'main/contract', 'vite.config.ts']));
    for (const p of RENDERER_INPUTS) expect(fs.existsSync(p)).toBe(true);
    expect(path.relative(REPO_ROOT, DEFAULT_STATIC_DIR)).toBe(path.join('dist', 'renderer'));
  });
});

describe('ensureRendererBuild', () => {
  it('builds a missing build, says so, and dates it from when the build started', async () => {
    const { src, out } = setup();
    const log: string[] = [];
    const before = Date.now();
    const r = await ensureRendererBuild({
      staticDir: out,
      inputs: [src],
      build: fakeBuild('new'),
      log: (m) => log.push(m),
    });
    expect(r).toEqual({ state: 'missing', built: true });
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).toContain('new');
    expect(log[0]).toMatch(/building the wizard into .*first start/);
    expect(log[1]).toMatch(/built the wizard in/);
    expect(builtAt(out)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    // only the build is left beside it: no temporary folders
    expect(fs.readdirSync(path.dirname(out))).toEqual(['renderer']);
  });

  it('leaves a fresh build alone', async () => {
    const { src, out } = setup(1000);
    writeBuild(out, 'old', 2000);
    let called = false;
    const build = async () => void (called = true);
    expect(await ensureRendererBuild({ staticDir: out, inputs: [src], build, log: noLog })).toEqual({
      state: 'fresh',
      built: false,
    });
    expect(called).toBe(false);
  });

  it('replaces a stale build, files that are no longer built included', async () => {
    const { src, out } = setup(3000);
    writeBuild(out, 'old', 2000);
    fs.writeFileSync(path.join(out, 'stale.js'), 'old');
    const log: string[] = [];
    const r = await ensureRendererBuild({
      staticDir: out,
      inputs: [src],
      build: fakeBuild('new'),
      log: (m) => log.push(m),
    });
    expect(r).toEqual({ state: 'stale', built: true });
    expect(fs.readdirSync(out)).toEqual(['index.html']);
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).toContain('new');
    expect(log[0]).toMatch(/changed since it was built/);
    expect(fs.readdirSync(path.dirname(out))).toEqual(['renderer']);
  });

  it('keeps the old build when a build fails, and reports why without throwing', async () => {
    const { src, out } = setup(3000);
    writeBuild(out, 'old', 2000);
    const failing = async (outDir: string) => {
      fs.writeFileSync(path.join(outDir, 'half.js'), 'half');
      throw new Error('vite build failed (exit 1)');
    };
    const r = await ensureRendererBuild({ staticDir: out, inputs: [src], build: failing, log: noLog });
    expect(r).toEqual({ state: 'stale', built: false, error: 'vite build failed (exit 1)' });
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).toContain('old');
    expect(fs.readdirSync(path.dirname(out))).toEqual(['renderer']);
  });

  it('refuses a build without index.html and leaves no folder behind', async () => {
    const { src, out } = setup();
    const empty = async () => {};
    const r = await ensureRendererBuild({ staticDir: out, inputs: [src], build: empty, log: noLog });
    expect(r).toMatchObject({
      state: 'missing',
      built: false,
      error: expect.stringMatching(/no index\.html/),
    });
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(path.dirname(out))).toEqual([]);
  });
});

describe('an abandoned build', () => {
  it('removes temporary folders of builds killed long ago, not those of builds under way', async () => {
    const { src, out } = setup();
    const parent = path.dirname(out);
    fs.mkdirSync(path.join(parent, '.renderer.building-old', 'assets'), { recursive: true });
    fs.mkdirSync(path.join(parent, '.renderer.building-now'));
    const hourAgo = Date.now() / 1000 - 3600;
    fs.utimesSync(path.join(parent, '.renderer.building-old'), hourAgo, hourAgo);
    await ensureRendererBuild({ staticDir: out, inputs: [src], build: fakeBuild('new'), log: noLog });
    expect(fs.readdirSync(parent).sort()).toEqual(['.renderer.building-now', 'renderer']);
  });
});
