/** `rankwise demo --out D` writes only into a new or empty D, or one an earlier demo run wrote. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { RankwiseError } from '../../main/core/errors.ts';
import { claimDemoFolder } from '../../main/cli/commands/demo.ts';
import { tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function refusal(dir: string): RankwiseError {
  try {
    claimDemoFolder(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(RankwiseError);
    return e as RankwiseError;
  }
  throw new Error(`${dir} was claimed`);
}

describe('the demo folder', () => {
  it("refuses a folder it did not write and leaves the user's files alone", () => {
    const dir = path.join(tmp.dir, 'mine');
    fs.mkdirSync(path.join(dir, 'export'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'export', 'notes.txt'), 'precious');
    const err = refusal(dir);
    expect(err.kind).toBe('bad-input');
    expect(err.message).toContain(dir);
    expect(fs.readdirSync(dir)).toEqual(['export']);
    expect(fs.readFileSync(path.join(dir, 'export', 'notes.txt'), 'utf8')).toBe('precious');
  });

  it('refuses a file', () => {
    const file = path.join(tmp.dir, 'a-file');
    fs.writeFileSync(file, 'x');
    expect(refusal(file).kind).toBe('bad-input');
  });

  it('claims a new folder, an empty one, and its own folder again', () => {
    const fresh = path.join(tmp.dir, 'new', 'demo');
    claimDemoFolder(fresh);
    expect(fs.readdirSync(fresh)).toEqual(['.rankwise-demo']);
    fs.mkdirSync(path.join(fresh, 'export'));
    claimDemoFolder(fresh);
    const empty = path.join(tmp.dir, 'empty');
    fs.mkdirSync(empty);
    claimDemoFolder(empty);
    expect(fs.existsSync(path.join(empty, '.rankwise-demo'))).toBe(true);
  });

  it("takes over an older demo's folder and removes the synthetic model it generated there", () => {
    const dir = path.join(tmp.dir, 'older');
    fs.mkdirSync(path.join(dir, 'model'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'export'));
    fs.writeFileSync(path.join(dir, 'model', '.rankwise-recipe'), 'an older recipe');
    fs.writeFileSync(path.join(dir, 'model', 'config.json'), '{}');
    claimDemoFolder(dir);
    expect(fs.readdirSync(dir).sort()).toEqual(['.rankwise-demo', 'export']);
  });

  it('does not take a model folder without the older demo’s stamp for its own', () => {
    const dir = path.join(tmp.dir, 'not-older');
    fs.mkdirSync(path.join(dir, 'model'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'model', 'config.json'), '{}');
    expect(refusal(dir).kind).toBe('bad-input');
    expect(fs.existsSync(path.join(dir, 'model', 'config.json'))).toBe(true);
  });
});
