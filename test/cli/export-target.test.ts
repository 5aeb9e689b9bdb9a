/** `compress --out` and `export --out` refuse a destination they could not write before any work. */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { runCli } from '../helpers/cli.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('export destinations on the command line', () => {
  it('compress --out in a place it cannot write fails before compressing, naming the place', async () => {
    const r = await runCli([
      'compress',
      STORIES_DIR,
      '--calib',
      TINYSTORIES_TEXT,
      '--eval',
      TINYSTORIES_TEXT,
      '--method',
      'kqsvd',
      '--k-rank',
      '4',
      '--v-rank',
      '4',
      '--window',
      '64',
      '--out',
      '/sys/rankwise-export',
    ]);
    expect(r.code).toBe(2);
    // no progress line: nothing was computed
    expect(r.stderr.trim().split('\n')).toEqual([
      'rankwise compress: /sys: is not writable (operation not permitted)',
    ]);
  });

  it('compress --out under a file fails before compressing, naming the file', async () => {
    const file = path.join(tmp.dir, 'a-file');
    await import('node:fs').then((fs) => fs.writeFileSync(file, ''));
    const r = await runCli([
      'compress',
      STORIES_DIR,
      '--calib',
      TINYSTORIES_TEXT,
      '--eval',
      TINYSTORIES_TEXT,
      '--method',
      'kqsvd',
      '--k-rank',
      '4',
      '--v-rank',
      '4',
      '--window',
      '64',
      '--out',
      path.join(file, 'export'),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(file);
  });
});
