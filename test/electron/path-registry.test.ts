/**
 * Audit #13, item 11: the desktop's PathRegistry compares real paths. A path under a picked folder that
 * leads out of it through a symlink is refused, and a pick made through a symlink grants the folder it
 * points to (not the link's lexical place).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PathRegistry } from '../../electron/path-registry.ts';

let base: string;
let picked: string;
let outside: string;
let data: string;

beforeAll(() => {
  base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'rw-registry-')));
  picked = path.join(base, 'models', 'tiny');
  outside = path.join(base, 'private');
  fs.mkdirSync(path.join(picked, 'sub'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'secret');
  fs.writeFileSync(path.join(picked, 'config.json'), '{}');
  // links inside the picked folder that lead out of it
  fs.symlinkSync(outside, path.join(picked, 'escape'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(picked, 'secret-link.txt'));
  fs.symlinkSync(path.join(outside, 'new-export'), path.join(picked, 'dangling'));
  // a link to the picked folder from elsewhere, and a data file reached through a link
  fs.symlinkSync(picked, path.join(base, 'alias'));
  data = path.join(base, 'texts', 'calib.txt');
  fs.mkdirSync(path.dirname(data));
  fs.writeFileSync(data, 'hello');
  fs.symlinkSync(outside, path.join(base, 'texts', 'escape'));
});

afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

describe('PathRegistry compares real paths', () => {
  it('refuses paths under a picked folder that lead out of it through a symlink', () => {
    const r = new PathRegistry();
    r.add(picked, 'model');
    expect(r.allows(path.join(picked, 'config.json'), 'read')).toBe(true);
    expect(r.allows(path.join(picked, 'sub', 'missing.json'), 'read')).toBe(true);
    expect(r.allows(path.join(picked, 'escape'), 'read')).toBe(false);
    expect(r.allows(path.join(picked, 'escape', 'secret.txt'), 'read')).toBe(false);
    expect(r.allows(path.join(picked, 'secret-link.txt'), 'read')).toBe(false);
    expect(r.allows(path.join(picked, 'dangling'), 'read')).toBe(false);
    expect(r.allows(path.join(picked, 'escape', 'new', 'deeper'), 'read')).toBe(false);
  });

  it('refuses writes through a symlink out of a picked export folder', () => {
    const r = new PathRegistry();
    r.add(picked, 'export');
    expect(r.allows(path.join(picked, 'tiny-kv'), 'write')).toBe(true);
    expect(r.allows(path.join(picked, 'escape', 'tiny-kv'), 'write')).toBe(false);
    expect(r.allows(path.join(picked, 'dangling'), 'write')).toBe(false);
  });

  it('a pick through a symlink grants the real folder, reached by either name', () => {
    const r = new PathRegistry();
    expect(r.add(path.join(base, 'alias'), 'model')).toBe(picked);
    expect(r.folders()).toEqual([picked]);
    expect(r.allows(path.join(picked, 'config.json'), 'read')).toBe(true);
    expect(r.allows(path.join(base, 'alias', 'config.json'), 'read')).toBe(true);
    expect(r.allows(path.join(base, 'alias', 'escape'), 'read')).toBe(false);
  });

  it('a picked data file is that file and nothing reached through a link beside it', () => {
    const r = new PathRegistry();
    r.add(data, 'data');
    expect(r.allows(data, 'read')).toBe(true);
    expect(r.allows(path.join(base, 'texts', 'escape', 'secret.txt'), 'read')).toBe(false);
    // the file swapped for a link out after it was picked
    const swapped = path.join(base, 'texts', 'swapped.txt');
    fs.writeFileSync(swapped, 'mine');
    r.add(swapped, 'data');
    expect(r.allows(swapped, 'read')).toBe(true);
    fs.rmSync(swapped);
    fs.symlinkSync(path.join(outside, 'secret.txt'), swapped);
    expect(r.allows(swapped, 'read')).toBe(false);
  });
});
