/**
 * Which files browser mode may touch. Anyone who can reach the socket holds the token, but the token
 * only grants the folders the user named on the command line: every path argument is resolved the way
 * the kernel will resolve it (symlinks and `..` included) and refused unless it lands inside a root.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ApiMethod, DirectoryListing } from '../api/contract.ts';
import { badInput, RankwiseError } from '../api/errors.ts';
import { isPlainObject } from './protocol.ts';

/** Dangling links followed in a row before giving up (the kernel's own limit is 40). */
const MAX_LINKS = 40;

const BUILTIN_SOURCES = new Set(['demo-calibration', 'demo-evaluation']);

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

export class PathGuard {
  /** Real paths of the folders the server may use, in the order given. */
  readonly roots: readonly string[];

  private constructor(roots: string[]) {
    this.roots = roots;
  }

  /** Resolves each root; a root that is missing or not a folder is the user's mistake, said at start-up. */
  static async create(roots: readonly string[]): Promise<PathGuard> {
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
    return new PathGuard(real);
  }

  /** True when the physical path `real` is a root or lies under one (`/a/bc` is not under `/a/b`). */
  contains(real: string): boolean {
    return this.roots.some((root) => {
      if (real === root) return true;
      const prefix = root.endsWith(path.sep) ? root : `${root}${path.sep}`;
      return real.startsWith(prefix);
    });
  }

  /** The physical path of `p`, or a bad-input error naming `p` when it leaves every root. */
  async check(p: string): Promise<string> {
    if (typeof p !== 'string' || p === '') throw badInput('a path argument is empty');
    if (p.includes('\0')) throw badInput('a path may not contain NUL characters', p);
    let real: string;
    try {
      real = await physical(absolute(p));
    } catch (e) {
      if (e instanceof RankwiseError) throw e;
      throw badInput(`cannot resolve the path (${errorCode(e) ?? String(e)})`, p);
    }
    if (!this.contains(real)) {
      throw badInput(`outside the folders this server may use: ${this.roots.join(', ')}`, p);
    }
    return real;
  }

  /**
   * As check, for a place the engine will write: a root itself is refused, since an export replaces its
   * destination whole and stages it in a sibling (`<out>.partial`), which for a root lies outside it.
   */
  async checkWritable(p: string): Promise<string> {
    const real = await this.check(p);
    if (this.roots.includes(real)) {
      throw badInput('is one of the folders this server may use; choose a new folder inside it', p);
    }
    return real;
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

function stringField(obj: Record<string, unknown>, key: string, what: string): string {
  const v = obj[key];
  if (typeof v !== 'string') throw badInput(`${what} must be a path (a string)`);
  return v;
}

function objectArg(v: unknown, what: string): Record<string, unknown> {
  if (!isPlainObject(v)) throw badInput(`${what} must be an object`);
  return v;
}

/** A DataSource's path, or none for a built-in text; anything else is refused rather than guessed at. */
function sourcePath(v: unknown, what: string): string[] {
  const source = objectArg(v, what);
  if ('path' in source) return [stringField(source, 'path', `${what}.path`)];
  if (typeof source.builtin === 'string' && BUILTIN_SOURCES.has(source.builtin)) return [];
  throw badInput(`${what} must be {path} or {builtin: "demo-calibration" | "demo-evaluation"}`);
}

function settingsPaths(v: unknown, what: string): string[] {
  const settings = objectArg(v, what);
  return [
    stringField(settings, 'model', `${what}.model`),
    ...sourcePath(settings.calib, `${what}.calib`),
    ...sourcePath(settings.eval, `${what}.eval`),
  ];
}

/** A path argument, and whether the engine will write there (an export destination). */
export interface PathArg {
  path: string;
  write: boolean;
}

const reads = (paths: string[]): PathArg[] => paths.map((p) => ({ path: p, write: false }));

/**
 * Every path-valued argument of a call, for the server to check before the engine sees any of them.
 * Throws bad-input when a field that must hold a path holds something else.
 */
export function pathArgs(method: ApiMethod, params: readonly unknown[]): PathArg[] {
  switch (method) {
    case 'inspect':
      if (typeof params[0] !== 'string') throw badInput('modelDir must be a path (a string)');
      return reads([params[0]]);
    case 'previewData': {
      const req = objectArg(params[0], 'the request');
      return reads([stringField(req, 'model', 'req.model'), ...sourcePath(req.source, 'req.source')]);
    }
    case 'estimate':
    case 'startJob':
      return reads(settingsPaths(params[0], 'settings'));
    case 'exportJob':
      return [{ path: stringField(objectArg(params[0], 'the request'), 'out', 'req.out'), write: true }];
    case 'browse':
      return typeof params[0] === 'string' ? reads([params[0]]) : [];
    case 'startTry': {
      const req = objectArg(params[0], 'the request');
      return reads(
        [req.model, req.compare].flatMap((m, i) => {
          const what = i === 0 ? 'req.model' : 'req.compare';
          if (m === undefined && i === 1) return [];
          const model = objectArg(m, what);
          return 'dir' in model ? [stringField(model, 'dir', `${what}.dir`)] : [];
        }),
      );
    }
    case 'cancelJob':
    case 'resumeJob':
    case 'subscribe':
    case 'getResult':
    case 'reallocate':
    case 'getExportReport':
    case 'getTryResult':
    case 'listJobs':
    case 'choosePath':
      return [];
  }
}

/** The path-valued arguments of a call (see pathArgs). */
export function pathsOf(method: ApiMethod, params: readonly unknown[]): string[] {
  return pathArgs(method, params).map((a) => a.path);
}
