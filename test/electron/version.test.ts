/** The desktop shell is built on the newest Electron 45 patch known when the audit asked for it. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { REPO_ROOT } from '../helpers/paths.ts';

const FLOOR = [45, 6, 1];

const parse = (v: string) => v.split('.').map(Number);
const atLeast = (v: number[], floor: number[]) => {
  for (let i = 0; i < floor.length; i++) if (v[i] !== floor[i]) return v[i] > floor[i];
  return true;
};

describe('Electron version', () => {
  it('package.json pins an exact Electron 45 at or past 45.6.1, and that is what is installed', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const pinned = pkg.devDependencies.electron;
    expect(pinned).toMatch(/^45\.\d+\.\d+$/);
    expect(atLeast(parse(pinned), FLOOR)).toBe(true);
    const installed = JSON.parse(
      fs.readFileSync(path.join(REPO_ROOT, 'node_modules', 'electron', 'package.json'), 'utf8'),
    ) as { version: string };
    expect(installed.version).toBe(pinned);
  });
});
