/**
 * Putting an export in place: only marked folders are ever removed, a swap killed between its two
 * renames is finished or undone by the next export, and a destination that cannot take the export is
 * refused before any work, naming the path.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { RankwiseError } from '../../main/core/errors.ts';
import {
  createPartial,
  PARTIAL_MARKER,
  prepareDestination,
  publishPartial,
  recoverExport,
  removePartial,
} from '../../main/export/publish.ts';
import { unwritable } from '../../main/model/fs-errors.ts';
import { tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

let n = 0;
const fresh = () => {
  const dir = path.join(tmp.dir, `case-${n++}`);
  fs.mkdirSync(dir);
  return dir;
};
const write = (dir: string, files: Record<string, string>) => {
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
};
const read = (dir: string) =>
  Object.fromEntries(
    fs
      .readdirSync(dir)
      .sort()
      .map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]),
  );
// a pid that is certainly not running: above the kernel's pid_max
const DEAD_PID = 2 ** 22 + 1;

describe('export destinations', () => {
  it("never removes a folder it did not create: a user's X.partial survives an export to X", async () => {
    const root = fresh();
    const out = path.join(root, 'X');
    write(`${out}.partial`, { 'mine.txt': 'user data' });
    const partial = await prepareDestination(out, 0);
    write(partial, { 'config.json': '{}' });
    await publishPartial(partial, out);
    expect(read(`${out}.partial`)).toEqual({ 'mine.txt': 'user data' });
    expect(read(out)).toEqual({ 'config.json': '{}' });
    // removePartial leaves an unmarked folder alone
    await removePartial(`${out}.partial`);
    expect(fs.existsSync(`${out}.partial`)).toBe(true);
  });

  it('clears the marked leftovers of dead exports, not those of a running one', async () => {
    const root = fresh();
    const out = path.join(root, 'X');
    const dead = `${out}.rankwise-partial-${DEAD_PID}-aaaa`;
    const live = `${out}.rankwise-partial-${process.pid}-bbbb`;
    const unmarked = `${out}.rankwise-partial-${DEAD_PID}-cccc`;
    write(dead, { [PARTIAL_MARKER]: JSON.stringify({ pid: DEAD_PID, created: '' }), a: '1' });
    write(live, { [PARTIAL_MARKER]: JSON.stringify({ pid: process.pid, created: '' }) });
    write(unmarked, { b: '2' });
    await recoverExport(out);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
    expect(fs.existsSync(unmarked)).toBe(true);
  });

  it('a swap killed after the old folder moved aside is finished by the next export', async () => {
    const root = fresh();
    const out = path.join(root, 'X');
    const old = `${out}.rankwise-old-${DEAD_PID}-1`;
    const partial = `${out}.rankwise-partial-${DEAD_PID}-1`;
    write(old, { 'v.txt': 'old' });
    write(partial, { 'v.txt': 'new' });
    fs.writeFileSync(`${out}.rankwise-swap.json`, JSON.stringify({ pid: DEAD_PID, out, old, partial }));
    await recoverExport(out);
    expect(read(out)).toEqual({ 'v.txt': 'new' });
    expect(fs.readdirSync(root)).toEqual(['X']);
  });

  it('a swap killed before the new folder existed is undone: the old folder comes back', async () => {
    const root = fresh();
    const out = path.join(root, 'X');
    const old = `${out}.rankwise-old-${DEAD_PID}-1`;
    write(old, { 'v.txt': 'old' });
    fs.writeFileSync(
      `${out}.rankwise-swap.json`,
      JSON.stringify({ pid: DEAD_PID, out, old, partial: `${out}.rankwise-partial-${DEAD_PID}-gone` }),
    );
    await recoverExport(out);
    expect(read(out)).toEqual({ 'v.txt': 'old' });
    expect(fs.readdirSync(root)).toEqual(['X']);
  });

  it('a swap killed after the new folder was in place removes the old one', async () => {
    const root = fresh();
    const out = path.join(root, 'X');
    const old = `${out}.rankwise-old-${DEAD_PID}-1`;
    write(old, { 'v.txt': 'old' });
    write(out, { 'v.txt': 'new' });
    fs.writeFileSync(
      `${out}.rankwise-swap.json`,
      JSON.stringify({ pid: DEAD_PID, out, old, partial: `${out}.rankwise-partial-${DEAD_PID}-1` }),
    );
    await recoverExport(out);
    expect(read(out)).toEqual({ 'v.txt': 'new' });
    expect(fs.readdirSync(root)).toEqual(['X']);
  });

  it('publishing over an existing folder leaves only the new one and no journal', async () => {
    const root = fresh();
    const out = path.join(root, 'X');
    write(out, { 'v.txt': 'old' });
    const partial = await createPartial(out);
    write(partial, { 'v.txt': 'new' });
    await publishPartial(partial, out);
    expect(read(out)).toEqual({ 'v.txt': 'new' });
    expect(fs.readdirSync(root)).toEqual(['X']);
  });

  it('refuses, before any work, a place it cannot write and a disk without room, naming the path', async () => {
    const notWritable = await prepareDestination('/sys/rankwise-export', 0).catch((e: unknown) => e);
    expect(notWritable).toBeInstanceOf(RankwiseError);
    expect((notWritable as Error).message).toMatch(/^\/sys: is not writable/);

    const root = fresh();
    fs.writeFileSync(path.join(root, 'file'), '');
    const underFile = await prepareDestination(path.join(root, 'file', 'X'), 0).catch((e: unknown) => e);
    expect((underFile as RankwiseError).kind).toBe('bad-input');
    expect((underFile as Error).message).toContain(path.join(root, 'file'));

    const tooBig = await prepareDestination(path.join(root, 'X'), 2 ** 60).catch((e: unknown) => e);
    expect((tooBig as RankwiseError).kind).toBe('bad-input');
    expect((tooBig as Error).message).toMatch(/GiB free and the export needs about/);
    expect(fs.readdirSync(root)).toEqual(['file']);
  });

  it('names read-only file systems and full disks in words', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(unwritable(err('EROFS'), '/x').message).toBe('/x: is on a read-only file system');
    expect(unwritable(err('ENOSPC'), '/x').message).toBe('/x: has no space left on its disk');
    expect(unwritable(err('EACCES'), '/x').message).toBe('/x: is not writable (permission denied)');
  });
});
