import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

// dialogs.ts takes Electron's types only; the dialog itself is passed in
vi.mock('electron', () => {
  throw new Error('electron/dialogs.ts must not load electron at run time');
});

import { DATA_EXTENSIONS, createDesktopPaths, type OpenDialog } from '../../electron/dialogs.ts';
import { PathRegistry } from '../../electron/path-registry.ts';
import { RankwiseError } from '../../main/core/errors.ts';

let tmp: string;
let model: string;
let data: string;

beforeAll(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'rw-dialogs-')));
  model = path.join(tmp, 'models', 'tiny');
  fs.mkdirSync(path.join(model, 'onnx'), { recursive: true });
  fs.writeFileSync(path.join(model, 'config.json'), '{}');
  fs.writeFileSync(path.join(model, 'model.safetensors'), Buffer.alloc(64));
  fs.mkdirSync(path.join(tmp, 'blobs'));
  fs.writeFileSync(path.join(tmp, 'blobs', 'tok'), 'x');
  fs.symlinkSync(path.join(tmp, 'blobs', 'tok'), path.join(model, 'tokenizer.json'));
  fs.symlinkSync(path.join(tmp, 'missing'), path.join(model, 'dangling'));
  fs.mkdirSync(path.join(model, '.cache'));
  data = path.join(tmp, 'texts', 'calib.jsonl');
  fs.mkdirSync(path.dirname(data));
  fs.writeFileSync(data, '{"text":"hello"}\n');
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('choosePath', () => {
  let registry: PathRegistry;
  let openDialog: ReturnType<typeof vi.fn<OpenDialog>>;

  beforeEach(() => {
    registry = new PathRegistry();
    openDialog = vi.fn<OpenDialog>();
  });

  it('model: a folder dialog; the folder picked becomes readable, inside and all', async () => {
    openDialog.mockResolvedValueOnce({ canceled: false, filePaths: [model] });
    const paths = createDesktopPaths(openDialog, registry);
    expect(await paths.choosePath('model')).toBe(model);
    expect(openDialog.mock.calls[0][0].properties).toContain('openDirectory');
    expect(openDialog.mock.calls[0][0].properties).not.toContain('openFile');
    expect(registry.allows(model, 'read')).toBe(true);
    expect(registry.allows(path.join(model, 'onnx', 'decoder.onnx'), 'read')).toBe(true);
    expect(registry.allows(model, 'write')).toBe(false);
    expect(registry.allows(tmp, 'read')).toBe(false);
  });

  it('data: a file dialog filtered to the text formats; only that file becomes readable', async () => {
    openDialog.mockResolvedValueOnce({ canceled: false, filePaths: [data] });
    const paths = createDesktopPaths(openDialog, registry);
    expect(await paths.choosePath('data')).toBe(data);
    const options = openDialog.mock.calls[0][0];
    expect(options.properties).toContain('openFile');
    expect(options.filters).toEqual([{ name: 'Text data', extensions: [...DATA_EXTENSIONS] }]);
    expect([...DATA_EXTENSIONS].sort()).toEqual(['gz', 'json', 'jsonl', 'parquet', 'txt']);
    expect(registry.allows(data, 'read')).toBe(true);
    expect(registry.allows(path.join(path.dirname(data), 'other.txt'), 'read')).toBe(false);
    expect(registry.allows(path.dirname(data), 'read')).toBe(false);
  });

  it('export: a folder dialog that can create the folder; writes are allowed inside it', async () => {
    const out = path.join(tmp, 'exports');
    openDialog.mockResolvedValueOnce({ canceled: false, filePaths: [out] });
    const paths = createDesktopPaths(openDialog, registry);
    expect(await paths.choosePath('export')).toBe(out);
    expect(openDialog.mock.calls[0][0].properties).toEqual(
      expect.arrayContaining(['openDirectory', 'createDirectory']),
    );
    expect(registry.allows(path.join(out, 'tiny-kv'), 'write')).toBe(true);
  });

  it('a cancelled dialog answers null and records nothing', async () => {
    openDialog.mockResolvedValueOnce({ canceled: true, filePaths: [] });
    const paths = createDesktopPaths(openDialog, registry);
    expect(await paths.choosePath('model')).toBeNull();
    expect(registry.folders()).toEqual([]);
  });

  it('an unknown purpose is bad input and opens no dialog', async () => {
    const paths = createDesktopPaths(openDialog, registry);
    await expect(paths.choosePath('home' as never)).rejects.toMatchObject({ kind: 'bad-input' });
    expect(openDialog).not.toHaveBeenCalled();
  });
});

describe('browse', () => {
  let registry: PathRegistry;
  const paths = () => createDesktopPaths(vi.fn(), registry);

  beforeEach(() => {
    registry = new PathRegistry();
    registry.add(model, 'model');
    registry.add(data, 'data');
  });

  it('lists a picked folder: folders first, sizes for files, links as what they point to, no hidden entries', async () => {
    const listing = await paths().browse(model);
    expect(listing.dir).toBe(model);
    expect(listing.entries).toEqual([
      { name: 'onnx', path: path.join(model, 'onnx'), kind: 'dir' },
      { name: 'config.json', path: path.join(model, 'config.json'), kind: 'file', bytes: 2 },
      { name: 'model.safetensors', path: path.join(model, 'model.safetensors'), kind: 'file', bytes: 64 },
      { name: 'tokenizer.json', path: path.join(model, 'tokenizer.json'), kind: 'file', bytes: 1 },
    ]);
    // the picked folder is the top: its parent was never chosen
    expect(listing.parent).toBeNull();
  });

  it('inside a picked folder the parent leads back up, to the picked folder at most', async () => {
    const listing = await paths().browse(path.join(model, 'onnx'));
    expect(listing.parent).toBe(model);
  });

  it('with no folder given, opens the most recently picked one', async () => {
    const other = path.join(tmp, 'texts');
    registry.add(other, 'export');
    expect((await paths().browse()).dir).toBe(other);
    registry.add(model, 'model');
    expect((await paths().browse()).dir).toBe(model);
  });

  it('refuses folders outside the picks, a picked file, and browsing before any pick', async () => {
    await expect(paths().browse(tmp)).rejects.toBeInstanceOf(RankwiseError);
    await expect(paths().browse(path.join(model, '..', '..'))).rejects.toMatchObject({ kind: 'bad-input' });
    await expect(paths().browse(path.dirname(data))).rejects.toMatchObject({ kind: 'bad-input' });
    await expect(paths().browse(data)).rejects.toMatchObject({ kind: 'bad-input' });
    const empty = createDesktopPaths(vi.fn(), new PathRegistry());
    await expect(empty.browse()).rejects.toMatchObject({ kind: 'bad-input' });
  });
});

describe('PathRegistry', () => {
  it('refuses relative paths, NUL bytes and prefix look-alikes', () => {
    const registry = new PathRegistry();
    const root = path.resolve('/picked/models');
    registry.add(root, 'model');
    expect(registry.allows('picked/models', 'read')).toBe(false);
    expect(registry.allows(`${root}\0/x`, 'read')).toBe(false);
    expect(registry.allows(`${root}-other`, 'read')).toBe(false);
    expect(registry.allows(path.join(root, '..folder-named-dots'), 'read')).toBe(true);
    expect(registry.allows(path.join(root, 'a', '..', '..', 'etc'), 'read')).toBe(false);
    expect(registry.allows('', 'read')).toBe(false);
  });
});
