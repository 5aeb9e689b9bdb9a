/**
 * The paths the user chose in a native dialog during this session. A renderer is treated as untrusted: if
 * it were compromised it could send any path over IPC, so main accepts only what the user picked.
 *
 * Paths are compared as the kernel resolves them, not as strings: a pick is recorded by its real path,
 * and a candidate is resolved to its real path (symlinks and `..` included; for a path that does not
 * exist yet, its nearest existing ancestor's real path plus the rest, following dangling links) before it
 * is compared, so a link inside a picked folder that leads out of it grants nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { PathAccess, PathPurpose } from '../main/contract/index.ts';

export type { PathAccess };

interface Choice {
  path: string;
  purpose: PathPurpose;
}

/** Dangling links followed in a row before giving up (the kernel's own limit is 40). */
const MAX_LINKS = 40;

export class PathRegistry {
  private readonly picks: Choice[] = [];

  /** Records a path from a dialog (a folder for 'model' and 'export', a file for 'data'); returns its real path. */
  add(chosen: string, purpose: PathPurpose): string {
    const resolved = physical(path.isAbsolute(chosen) ? chosen : path.resolve(chosen));
    if (resolved === null) throw new Error(`rankwise: the chosen path cannot be resolved: ${chosen}`);
    const again = this.picks.findIndex((p) => p.path === resolved && p.purpose === purpose);
    // picking again makes it the most recent, which is where `browse()` opens
    if (again >= 0) this.picks.splice(again, 1);
    this.picks.push({ path: resolved, purpose });
    return resolved;
  }

  /**
   * Reads are allowed on any pick and inside any picked folder; writes only inside a folder picked for
   * export, so a renderer cannot aim an export (which may replace a folder) at the user's model.
   */
  allows(candidate: string, access: PathAccess): boolean {
    return this.resolve(candidate, access) !== null;
  }

  /** The real path of `candidate` when `access` to it is allowed, else null. */
  resolve(candidate: string, access: PathAccess): string | null {
    const resolved = normalise(candidate);
    if (resolved === null) return null;
    const allowed = this.picks.some((pick) => {
      if (access === 'write' && pick.purpose !== 'export') return false;
      // a data pick is a single file: nothing beside or below it comes with it
      return pick.purpose === 'data' ? resolved === pick.path : isInside(pick.path, resolved);
    });
    return allowed ? resolved : null;
  }

  /** Picked folders, most recent first: where the desktop's `browse` may list. */
  folders(): string[] {
    return this.picks
      .filter((p) => p.purpose !== 'data')
      .map((p) => p.path)
      .reverse()
      .filter((p, i, all) => all.indexOf(p) === i);
  }
}

/** Absolute paths only (a relative one would resolve against main's working folder, which nobody chose), real. */
function normalise(candidate: string): string | null {
  if (typeof candidate !== 'string' || candidate.length === 0 || candidate.includes('\0')) return null;
  if (!path.isAbsolute(candidate)) return null;
  return physical(candidate);
}

function errorCode(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e ? String(e.code) : undefined;
}

/**
 * The real path `p` (absolute) names: realpath when it exists; otherwise the real path of its parent plus
 * its name, following a dangling link to wherever it points, so a link to a missing place outside a
 * picked folder cannot pass for a new file inside it. Null when it cannot be resolved (a link loop).
 */
function physical(p: string, links = 0): string | null {
  try {
    return fs.realpathSync.native(p);
  } catch (e) {
    const code = errorCode(e);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return null;
  }
  const parent = path.dirname(p);
  if (parent === p) return p;
  let stat: fs.Stats | null = null;
  try {
    stat = fs.lstatSync(p);
  } catch {
    // missing: the parent decides
  }
  if (stat?.isSymbolicLink()) {
    if (links >= MAX_LINKS) return null;
    const target = fs.readlinkSync(p);
    if (path.isAbsolute(target)) return physical(target, links + 1);
    const realParent = physical(parent, links + 1);
    // joined as text: `dir/..` in the target must go wherever the kernel takes it, not vanish lexically
    return realParent === null ? null : physical(`${realParent}${path.sep}${target}`, links + 1);
  }
  const realParent = physical(parent, links);
  // the parent is real (no links left in it), so joining the missing name is what the kernel does
  return realParent === null ? null : path.join(realParent, path.basename(p));
}

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
