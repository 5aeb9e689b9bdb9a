/**
 * Putting a finished export in place without ever losing a folder (ARCHITECTURE.md §7). An export is
 * written to a temporary folder beside `<out>` that carries a marker file, so only folders Rankwise
 * made are ever removed; replacing an existing `<out>` is a journalled pair of renames, so a kill at any
 * moment leaves either the old folder or the new one, and the next export finishes or undoes the swap;
 * and where `<out>` will go is checked (writable, room for the predicted size) before any work starts.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { badInput } from '../core/errors.ts';
import { fsErrorCode, unwritable } from '../model/fs-errors.ts';

/** Inside every temporary folder Rankwise writes; nothing without it is ever removed. */
export const PARTIAL_MARKER = '.rankwise-partial';
const PARTIAL_INFIX = '.rankwise-partial-';
const OLD_INFIX = '.rankwise-old-';
const JOURNAL_SUFFIX = '.rankwise-swap.json';

interface Marker {
  pid: number;
  created: string;
}

interface Journal {
  pid: number;
  out: string;
  old: string;
  partial: string;
}

const isAlive = (pid: number) => {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return fsErrorCode(e) === 'EPERM';
  }
};

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await fs.promises.readFile(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

async function isOurs(dir: string): Promise<Marker | null> {
  return readJson<Marker>(path.join(dir, PARTIAL_MARKER));
}

/** The temporary folders beside `out` that carry Rankwise's marker, with it. */
async function markedPartials(out: string): Promise<{ dir: string; marker: Marker }[]> {
  const parent = path.dirname(out);
  const prefix = `${path.basename(out)}${PARTIAL_INFIX}`;
  const names = await fs.promises.readdir(parent).catch(() => [] as string[]);
  const found: { dir: string; marker: Marker }[] = [];
  for (const name of names.filter((n) => n.startsWith(prefix))) {
    const dir = path.join(parent, name);
    const marker = await isOurs(dir);
    if (marker) found.push({ dir, marker });
  }
  return found;
}

/** A new temporary folder beside `out`, marked as Rankwise's; fails with the path named when it cannot. */
export async function createPartial(out: string): Promise<string> {
  const partial = `${out}${PARTIAL_INFIX}${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fs.promises.mkdir(path.dirname(out), { recursive: true });
    await fs.promises.mkdir(partial);
    const marker: Marker = { pid: process.pid, created: new Date().toISOString() };
    await fs.promises.writeFile(path.join(partial, PARTIAL_MARKER), JSON.stringify(marker));
  } catch (e) {
    await fs.promises.rm(partial, { recursive: true, force: true }).catch(() => undefined);
    throw unwritable(e, path.dirname(out));
  }
  return partial;
}

/** Removes a temporary folder, but only one that carries Rankwise's marker. */
export async function removePartial(partial: string): Promise<void> {
  if (await isOurs(partial)) await fs.promises.rm(partial, { recursive: true, force: true });
}

/**
 * Removes the marked temporary folders this process left for `out` (a worker's export that ended without
 * cleaning up after itself); the caller knows that no export to `out` is running here.
 */
export async function removeOwnPartials(out: string): Promise<void> {
  for (const { dir, marker } of await markedPartials(out)) {
    if (marker.pid === process.pid) await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Finishes or undoes a swap that a killed export left half done, then clears the temporary folders of
 * dead exports to `out`. Safe to call before every export.
 */
export async function recoverExport(out: string): Promise<void> {
  const journalFile = `${out}${JOURNAL_SUFFIX}`;
  const journal = await readJson<Journal>(journalFile);
  if (journal && journal.out === out && !isAlive(journal.pid)) {
    const exists = (p: string) =>
      fs.promises.stat(p).then(
        () => true,
        () => false,
      );
    if (!(await exists(out))) {
      // the new folder was verified before the swap began, so it goes in; else the old one comes back
      if (await exists(journal.partial)) await fs.promises.rename(journal.partial, out);
      else if (await exists(journal.old)) await fs.promises.rename(journal.old, out);
    }
    if (await exists(out)) {
      await fs.promises.rm(journal.old, { recursive: true, force: true });
      await fs.promises.rm(path.join(out, PARTIAL_MARKER), { force: true });
    }
    await fs.promises.rm(journalFile, { force: true });
  }
  for (const { dir, marker } of await markedPartials(out)) {
    if (!isAlive(marker.pid)) await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Moves the verified `partial` to `out`. An existing `out` is moved aside first and removed only after
 * the new folder is in place; the journal beside `out` lets recoverExport finish the swap after a kill.
 */
export async function publishPartial(partial: string, out: string): Promise<void> {
  await fs.promises.rm(path.join(partial, PARTIAL_MARKER), { force: true });
  const exists = await fs.promises.stat(out).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await fs.promises.rename(partial, out);
    return;
  }
  const old = `${out}${OLD_INFIX}${process.pid}-${randomBytes(4).toString('hex')}`;
  const journalFile = `${out}${JOURNAL_SUFFIX}`;
  const journal: Journal = { pid: process.pid, out, old, partial };
  await fs.promises.writeFile(`${journalFile}.tmp`, JSON.stringify(journal));
  await fs.promises.rename(`${journalFile}.tmp`, journalFile);
  await fs.promises.rename(out, old);
  try {
    await fs.promises.rename(partial, out);
  } catch (e) {
    await fs.promises.rename(old, out);
    await fs.promises.rm(journalFile, { force: true });
    throw e;
  }
  await fs.promises.rm(old, { recursive: true, force: true });
  await fs.promises.rm(journalFile, { force: true });
}

/**
 * Before any work: `out`'s parent can be written (proved by making the marked temporary folder there)
 * and its file system has room for `bytes`. Returns the temporary folder, ready for the export.
 */
export async function prepareDestination(out: string, bytes: number): Promise<string> {
  await recoverExport(out);
  const partial = await createPartial(out);
  try {
    const stat = await fs.promises.statfs(partial);
    const free = stat.bavail * stat.bsize;
    if (free < bytes) {
      const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
      throw badInput(
        `has ${gib(free)} free and the export needs about ${gib(bytes)}; free some space or choose another folder`,
        path.dirname(out),
      );
    }
  } catch (e) {
    await removePartial(partial);
    throw e;
  }
  return partial;
}
