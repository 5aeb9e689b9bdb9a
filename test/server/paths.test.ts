/**
 * PathGuard's open-once reads and safe export folders (audit #13, item 10), step by step: a pinned file
 * is read through what was opened whatever happens to its name afterwards; a file that is a link by the
 * time it is opened is refused; an export's parent folders are made inside the root, never through a link.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PathGuard } from '../../main/server/paths.ts';
import { makeFolders, SECRET, type Folders } from './fixture.ts';

let folders: Folders;
let guard: PathGuard;

beforeAll(async () => {
  folders = makeFolders();
  guard = await PathGuard.create([folders.root]);
});
afterAll(async () => {
  await guard.close();
  folders.cleanup();
});

describe('PathGuard.pin', () => {
  // elsewhere the engine is given the checked real path (no /proc to reach the open file by)
  it.runIf(process.platform === 'linux')(
    'lends the file it opened: a swap of the name afterwards changes nothing',
    async () => {
      const file = path.join(folders.root, 'pinned.txt');
      fs.writeFileSync(file, 'inside');
      const pin = await guard.pin(file);
      try {
        expect(pin.real).toBe(file);
        expect(path.basename(pin.path)).toBe('pinned.txt');
        // the name now leads outside the root
        fs.rmSync(file);
        fs.symlinkSync(path.join(folders.outside, 'secret.txt'), file);
        expect(fs.readFileSync(pin.path, 'utf8')).toBe('inside');
        expect(fs.readFileSync(file, 'utf8')).toBe(SECRET);
      } finally {
        await pin.release();
        fs.rmSync(file);
      }
      expect(fs.existsSync(pin.path)).toBe(false);
    },
  );

  it('refuses a link out of the root, a folder and a missing file', async () => {
    await expect(guard.pin(path.join(folders.root, 'escape-file'))).rejects.toMatchObject({
      kind: 'bad-input',
      message: expect.stringMatching(/outside the folders/),
    });
    await expect(guard.pin(path.join(folders.root, 'sub'))).rejects.toMatchObject({
      message: expect.stringMatching(/is a folder/),
    });
    await expect(guard.pin(path.join(folders.root, 'nope.txt'))).rejects.toMatchObject({
      message: expect.stringMatching(/does not exist/),
    });
  });

  it.runIf(process.platform === 'linux')(
    'keeps its links in a folder only this process can write, removed on close',
    async () => {
      const other = await PathGuard.create([folders.root]);
      const pin = await other.pin(path.join(folders.root, 'data.txt'));
      const dir = path.dirname(path.dirname(pin.path));
      expect(fs.statSync(dir).mode & 0o077).toBe(0);
      expect(fs.readlinkSync(pin.path)).toMatch(/^\/proc\/self\/fd\/\d+$/);
      await pin.release();
      await other.close();
      expect(fs.existsSync(dir)).toBe(false);
    },
  );
});

describe('PathGuard.prepareWrite', () => {
  it('makes the parent folders inside the root and answers the real path', async () => {
    const out = path.join(folders.root, 'exports', 'a', 'b', 'model-kv');
    expect(await guard.prepareWrite(`${folders.root}/sub/../exports/a/b/model-kv`)).toBe(out);
    expect(fs.statSync(path.dirname(out)).isDirectory()).toBe(true);
    expect(fs.existsSync(out)).toBe(false);
    fs.rmSync(path.join(folders.root, 'exports'), { recursive: true });
  });

  it('refuses a destination under a link out of the root, making nothing', async () => {
    await expect(guard.prepareWrite(path.join(folders.root, 'escape', 'new', 'x'))).rejects.toMatchObject({
      kind: 'bad-input',
    });
    expect(fs.existsSync(path.join(folders.outside, 'new'))).toBe(false);
  });
});
