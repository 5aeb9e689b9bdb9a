/**
 * The paths the user chose in a native dialog during this session. A renderer is treated as untrusted: if
 * it were compromised it could send any path over IPC, so main accepts only what the user picked.
 */
import path from 'node:path';
import type { PathPurpose } from '../main/api/contract.ts';

export type PathAccess = 'read' | 'write';

interface Choice {
  path: string;
  purpose: PathPurpose;
}

export class PathRegistry {
  private readonly picks: Choice[] = [];

  /** Records a path from a dialog: a folder for 'model' and 'export', a file for 'data'. */
  add(chosen: string, purpose: PathPurpose): string {
    const resolved = path.resolve(chosen);
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
    const resolved = normalise(candidate);
    if (resolved === null) return false;
    return this.picks.some((pick) => {
      if (access === 'write' && pick.purpose !== 'export') return false;
      // a data pick is a single file: nothing beside or below it comes with it
      return pick.purpose === 'data' ? isSame(pick.path, resolved) : isInside(pick.path, resolved);
    });
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

/** Absolute paths only: a relative one would resolve against main's working folder, which nobody chose. */
function normalise(candidate: string): string | null {
  if (typeof candidate !== 'string' || candidate.length === 0 || candidate.includes('\0')) return null;
  if (!path.isAbsolute(candidate)) return null;
  return path.resolve(candidate);
}

function isSame(a: string, b: string): boolean {
  return path.relative(a, b) === '';
}

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
