/**
 * Which files browser mode may touch. Anyone who can reach the socket holds the token, but the token
 * only grants the folders the user named on the command line: every path argument is resolved the way
 * the kernel will resolve it (symlinks and `..` included) and refused unless it lands inside a root.
 *
 * A check and a later read by name race with anyone who can rename files inside a root (a file swapped
 * for a link to one outside between the two). So the engine is never given the caller's string: each
 * path argument is resolved once and the engine gets the real path; the file whose contents go back to
 * the caller (previewData's text) is opened once, checked as opened, and read through that open file;
 * an export's parent folders are made here without following links.
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  pathFields,
  type ApiMethod,
  type DirectoryListing,
  type LocalModel,
  type LocalModels,
} from '../contract/index.ts';
import { badInput, RankwiseError } from '../core/errors.ts';

/** Dangling links followed in a row before giving up (the kernel's own limit is 40). */
const MAX_LINKS = 40;

function errorCode(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e ? String(e.code) : undefined;
}

/** Absolute without lexical normalisation: `link/..` must go wherever the kernel takes it, not vanish. */
function absolute(p: string): string {
  return path.isAbsolute(p) ? p : `${process.cwd()}${path.sep}${p}`;
}

/**
 * The physical path `p` names: realpath when it exists; otherwise the realpath of its nearest existing
 * ancestor plus the rest, following dangling symlinks so a link to a missing place outside a root cannot
 * pass for a new file inside it.
 */
async function physical(p: string, links = 0): Promise<string> {
  try {
    return await fs.realpath(p);
  } catch (e) {
    const code = errorCode(e);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
  }
  const parent = path.dirname(p);
  if (parent === p) return p;
  const name = path.basename(p);
  const stat = await fs.lstat(p).catch(() => null);
  if (stat?.isSymbolicLink()) {
    if (links >= MAX_LINKS) throw badInput('too many levels of symbolic links', p);
    const target = await fs.readlink(p);
    return physical(
      path.isAbsolute(target) ? target : `${await physical(parent, links + 1)}${path.sep}${target}`,
      links + 1,
    );
  }
  // The ancestor is real (no links left in it), so joining the missing rest lexically is what the kernel does.
  return path.join(await physical(parent, links), name);
}

/** A file opened and checked by PathGuard.pin, lent to the engine under `path`. */
export interface PinnedFile {
  /** What the engine is given to read. */
  path: string;
  /** The real path of the file opened: what answers and errors name instead of `path`. */
  real: string;
  /** Closes the file and removes the link to it. */
  release(): Promise<void>;
}

function changed(p: string): RankwiseError {
  return badInput(
    'changed while it was being opened (replaced, or a part of it became a link); it is refused',
    p,
  );
}

/** Opens `p` read-only without following a symlink in its last part (and without blocking on a FIFO). */
async function openNoFollow(p: string, dir: boolean, given: string): Promise<FileHandle> {
  const flags =
    fsConstants.O_RDONLY |
    (fsConstants.O_NOFOLLOW ?? 0) |
    (fsConstants.O_NONBLOCK ?? 0) |
    (dir ? (fsConstants.O_DIRECTORY ?? 0) : 0);
  try {
    return await fs.open(p, flags);
  } catch (e) {
    const code = errorCode(e);
    // ELOOP (Linux, macOS) or EMLINK (FreeBSD): the last part is a symlink now
    if (code === 'ELOOP' || code === 'EMLINK' || code === 'ENOTDIR') throw changed(given);
    if (code === 'ENOENT') throw badInput('does not exist: check the path', given);
    throw badInput(`cannot be opened (${code ?? String(e)})`, given);
  }
}

let procFd: Promise<boolean> | null = null;

/** Whether /proc/self/fd/N names this process's open files (Linux). */
function procFdWorks(): Promise<boolean> {
  procFd ??= (async () => {
    if (process.platform !== 'linux') return false;
    const handle = await fs.open(process.execPath, 'r').catch(() => null);
    if (!handle) return false;
    try {
      return (await fs.readlink(`/proc/self/fd/${handle.fd}`)) === (await fs.realpath(process.execPath));
    } catch {
      return false;
    } finally {
      await handle.close();
    }
  })();
  return procFd;
}

/** Where the file open as `handle` (opened as `p`) really is now. */
async function openedPath(handle: FileHandle, p: string, given: string): Promise<string> {
  if (await procFdWorks()) return fs.readlink(`/proc/self/fd/${handle.fd}`);
  // without /proc: the checked path must still lead to the very file that was opened
  const [opened, now] = await Promise.all([
    handle.stat(),
    fs.realpath(p).then(
      async (real) => ({ real, stat: await fs.stat(real) }),
      () => null,
    ),
  ]);
  if (!now || now.stat.dev !== opened.dev || now.stat.ino !== opened.ino) throw changed(given);
  return now.real;
}

/** Whether the physical path `real` is one of `dirs` or lies under one (`/a/bc` is not under `/a/b`). */
function under(real: string, dirs: readonly string[]): boolean {
  return dirs.some((dir) => {
    if (real === dir) return true;
    const prefix = dir.endsWith(path.sep) ? dir : `${dir}${path.sep}`;
    return real.startsWith(prefix);
  });
}

export class PathGuard {
  /** Real paths of the folders the server may use, in the order given. */
  readonly roots: readonly string[];
  /**
   * Folders of Rankwise's own that a page may read but never write: the bundled model, so the wizard's
   * default works whatever roots the user named. Missing ones are left out.
   */
  private readonly readOnly: readonly string[];

  private constructor(roots: string[], readOnly: string[]) {
    this.roots = roots;
    this.readOnly = readOnly;
  }

  /** Resolves each root; a root that is missing or not a folder is the user's mistake, said at start-up. */
  static async create(roots: readonly string[], readOnly: readonly string[] = []): Promise<PathGuard> {
    if (roots.length === 0) throw badInput('the server needs at least one folder it may use');
    const real: string[] = [];
    for (const root of roots) {
      let resolved: string;
      try {
        resolved = await fs.realpath(absolute(root));
      } catch {
        throw badInput('folder does not exist', root);
      }
      if (!(await fs.stat(resolved)).isDirectory()) throw badInput('not a folder', root);
      if (!real.includes(resolved)) real.push(resolved);
    }
    const own = await Promise.all(readOnly.map((d) => fs.realpath(d).catch(() => null)));
    return new PathGuard(
      real,
      own.filter((d) => d !== null),
    );
  }

  /** True when the physical path `real` is a root or lies under one (`/a/bc` is not under `/a/b`). */
  contains(real: string): boolean {
    return under(real, this.roots);
  }

  /** The physical path of `p`, or a bad-input error naming `p` when it leaves every root. */
  async check(p: string): Promise<string> {
    return this.resolve(p, true);
  }

  private async resolve(p: string, reading: boolean): Promise<string> {
    if (typeof p !== 'string' || p === '') throw badInput('a path argument is empty');
    if (p.includes('\0')) throw badInput('a path may not contain NUL characters', p);
    let real: string;
    try {
      real = await physical(absolute(p));
    } catch (e) {
      if (e instanceof RankwiseError) throw e;
      throw badInput(`cannot resolve the path (${errorCode(e) ?? String(e)})`, p);
    }
    if (!this.contains(real) && !(reading && under(real, this.readOnly))) {
      throw badInput(`outside the folders this server may use: ${this.roots.join(', ')}`, p);
    }
    return real;
  }

  /**
   * As check, for a place the engine will write: a root itself is refused, since an export replaces its
   * destination whole and stages it in a sibling (`<out>.partial`), which for a root lies outside it.
   */
  async checkWritable(p: string): Promise<string> {
    const real = await this.resolve(p, false);
    if (this.roots.includes(real)) {
      throw badInput('is one of the folders this server may use; choose a new folder inside it', p);
    }
    return real;
  }

  /**
   * As checkWritable, for an export destination: the folders above it are made here, one at a time and
   * never through a link (a folder swapped for a symlink on the way is refused), and the parent is then
   * opened and checked to lie inside a root as opened. Returns the destination's real path.
   */
  async prepareWrite(p: string): Promise<string> {
    const real = await this.checkWritable(p);
    const parent = path.dirname(real);
    const missing: string[] = [];
    for (let at = parent; ; at = path.dirname(at)) {
      const stat = await fs.lstat(at).catch(() => null);
      if (stat) {
        if (!stat.isDirectory()) throw changed(p);
        break;
      }
      missing.unshift(at);
      if (path.dirname(at) === at) break;
    }
    for (const dir of missing) {
      try {
        await fs.mkdir(dir);
      } catch (e) {
        if (errorCode(e) !== 'EEXIST')
          throw badInput(`cannot create the folder ${dir} (${errorCode(e) ?? e})`, p);
      }
      if (!(await fs.lstat(dir)).isDirectory()) throw changed(p);
    }
    if (await procFdWorks()) {
      const handle = await openNoFollow(parent, true, p);
      try {
        if ((await openedPath(handle, parent, p)) !== parent) throw changed(p);
      } finally {
        await handle.close();
      }
    } else if ((await fs.realpath(parent).catch(() => null)) !== parent) {
      throw changed(p);
    }
    return real;
  }

  /**
   * Opens the file `p` names once and checks the file as opened, not the name: its real path (checked
   * like any other) is opened without following a link in its last part, and what was opened must be a
   * regular file inside a root (on Linux, the kernel says where the open file is: /proc/self/fd/N;
   * elsewhere, the checked path must still name that same file, device and inode). What the engine is
   * given to read is then, on Linux, a link in a folder only this process can write that leads to
   * /proc/self/fd/N, which reaches the opened file whatever happens to the names afterwards; elsewhere,
   * the checked real path. Release the pin once the engine has answered.
   */
  async pin(p: string): Promise<PinnedFile> {
    const real = await this.check(p);
    const handle = await openNoFollow(real, false, p);
    try {
      const stat = await handle.stat();
      if (stat.isDirectory()) throw badInput('is a folder; pass one text file', p);
      if (!stat.isFile()) throw badInput('is not a regular file; pass a text file saved on disk', p);
      if (stat.nlink === 0) throw changed(p);
      const opened = await openedPath(handle, real, p);
      // removed meanwhile: /proc then names it "… (deleted)", which is no path to check
      if ((await handle.stat()).nlink === 0) throw changed(p);
      if (!this.contains(opened) && !under(opened, this.readOnly)) {
        throw badInput(`outside the folders this server may use: ${this.roots.join(', ')}`, p);
      }
      if (!(await procFdWorks())) {
        return { path: real, real: opened, release: () => handle.close() };
      }
      const slot = path.join(await this.pinFolder(), String(this.pinCount++));
      await fs.mkdir(slot, { mode: 0o700 });
      // the name checked, so the engine sees the extension it chose the format by
      const alias = path.join(slot, path.basename(real));
      await fs.symlink(`/proc/self/fd/${handle.fd}`, alias);
      return {
        path: alias,
        real: opened,
        release: async () => {
          await fs.rm(slot, { recursive: true, force: true });
          await handle.close();
        },
      };
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  private pinDir: Promise<string> | null = null;
  private pinCount = 0;

  /** A folder of this process's own (0700, under the system temp folder) for the links pin() makes. */
  private pinFolder(): Promise<string> {
    this.pinDir ??= fs.mkdtemp(path.join(os.tmpdir(), 'rankwise-pins-'));
    return this.pinDir;
  }

  /** Removes pin()'s folder; pins still out stay readable through their handles until released. */
  async close(): Promise<void> {
    const dir = this.pinDir;
    this.pinDir = null;
    if (dir) await fs.rm(await dir, { recursive: true, force: true });
  }

  /**
   * A folder's entries, folders first, each group by name; only entries that resolve inside the roots
   * (a symlink out of a root is left out) and only folders and regular files (a FIFO would hang a reader).
   * With no `dir`, the roots themselves, under `dir: ''`.
   */
  async browse(dir?: string): Promise<DirectoryListing> {
    if (dir === undefined) {
      return {
        dir: '',
        parent: null,
        entries: this.roots.map((root) => ({ name: root, path: root, kind: 'dir' as const })),
      };
    }
    const real = await this.check(dir);
    const stat = await fs.stat(real).catch(() => null);
    if (!stat) throw badInput('folder does not exist', dir);
    if (!stat.isDirectory()) throw badInput('not a folder', dir);
    const names = await fs.readdir(real);
    const entries = (
      await Promise.all(
        names.map(async (name) => {
          const full = path.join(real, name);
          const target = await fs.realpath(full).catch(() => null);
          if (target === null || !this.contains(target)) return null;
          const s = await fs.stat(target).catch(() => null);
          if (s?.isDirectory()) return { name, path: full, kind: 'dir' as const };
          if (s?.isFile()) return { name, path: full, kind: 'file' as const, bytes: s.size };
          return null;
        }),
      )
    ).filter((e) => e !== null);
    entries.sort((a, b) =>
      a.kind !== b.kind ? (a.kind === 'dir' ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    const up = path.dirname(real);
    const parent = this.roots.includes(real) || up === real || !this.contains(up) ? null : up;
    return { dir: real, parent, entries };
  }
}

/**
 * listModels' answer as browser mode may give it: only folders inside the roots, the others left out and
 * counted (`hidden`), so the page can say that the Hugging Face cache needs `--root`. The cache is not made
 * a root of its own: the token grants the folders the user named when starting the server, not whatever
 * the engine happens to find on the machine, and a listed folder the server could not then read would be
 * a pick that fails.
 */
export async function visibleModels(guard: PathGuard, models: LocalModels): Promise<LocalModels> {
  let hidden = 0;
  const keep = async (list: LocalModel[]) => {
    const inside = await Promise.all(
      list.map(async (m) => {
        const real = await guard.check(m.path).catch(() => null);
        return real === null ? null : { ...m, path: real };
      }),
    );
    hidden += inside.filter((m) => m === null).length;
    return inside.filter((m) => m !== null);
  };
  const huggingFace = await keep(models.huggingFace);
  const recent = await keep(models.recent);
  // the bundled model is readable whenever the guard was given it; otherwise it is simply not offered
  const bundledReal = models.bundled ? await guard.check(models.bundled.path).catch(() => null) : null;
  const bundled = models.bundled && bundledReal ? { ...models.bundled, path: bundledReal } : null;
  return { ...models, bundled, huggingFace, recent, hidden };
}

/** A call's arguments with each path swapped for what the guard vetted, and what to undo afterwards. */
export interface VettedCall {
  params: unknown[];
  /** Files lent to the engine for this call; release them once it has answered. */
  pins: PinnedFile[];
}

/**
 * Vets every path of a checked call (protocol.ts ran the manifest's schema on it) by the role the manifest
 * gives it, and puts the vetted path in its place: the real path, so the engine never resolves the
 * caller's string again; for a file whose contents the call sends back (role `text-sample`: previewData's
 * text), a path that reaches exactly the file that was opened and checked (see PathGuard.pin); for a place
 * the engine writes (role `output-dir`: an export destination), the real path once its parent folders
 * exist inside a root.
 */
export async function vetPaths(guard: PathGuard, method: ApiMethod, params: unknown[]): Promise<VettedCall> {
  const pins: PinnedFile[] = [];
  try {
    for (const field of pathFields(method, params)) {
      if (field.access === 'write') {
        field.replace(await guard.prepareWrite(field.path));
      } else if (field.content) {
        const pin = await guard.pin(field.path);
        pins.push(pin);
        field.replace(pin.path);
      } else {
        field.replace(await guard.check(field.path));
      }
    }
  } catch (e) {
    await Promise.all(pins.map((p) => p.release()));
    throw e;
  }
  return { params, pins };
}
