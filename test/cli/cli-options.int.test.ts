/**
 * The command line as a user meets it, through the real binary: --version, --help, a mistyped option or
 * command (exit 2, the nearest suggested), --kv-fraction as a fraction or a percentage, and progress on a
 * pipe as plain lines.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';

import { REPO_ROOT, STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-cli-options-');
afterAll(() => tmp.cleanup());

function rankwise(args: string[]) {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'rankwise.mjs'), ...args], {
    encoding: 'utf8',
    // the job and its cache stay in this test's folder
    env: { ...process.env, RANKWISE_HOME: path.join(tmp.dir, 'home') },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const COMPRESS = ['compress', STORIES_DIR, '--calib', TINYSTORIES_TEXT, '--eval', TINYSTORIES_TEXT];

describe('rankwise --version', () => {
  it.each(['--version', '-V'])('%s prints package.json version', (flag) => {
    const { version } = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const r = rankwise([flag]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${version}\n`);
  });
});

describe('rankwise --help', () => {
  it('lists the commands', () => {
    const r = rankwise(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['inspect', 'eval', 'compress', 'export', 'generate', 'serve', 'demo']) {
      expect(r.stdout).toMatch(new RegExp(`^ {2}${c} {2,}\\S`, 'm'));
    }
  });

  it('compress --help lists its options with their defaults and examples', () => {
    const r = rankwise(['compress', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^ {2}--kv-fraction F +.+\n +fraction in \(0, 1\], or a percentage: 0\.5 or 50%; default: none$/m,
    );
    expect(r.stdout).toMatch(/^ {2}--window N +.+\n +integer ≥ 2; default: 512$/m);
    expect(r.stdout).toMatch(/^Examples:\n {2}rankwise compress /m);
  });
});

describe('mistakes are bad input (exit 2), in one line', () => {
  it.each([
    [
      [...COMPRESS, '--method', 'kqsvd', '--kv-fractoin', '0.5'],
      'rankwise compress: unknown option --kv-fractoin; did you mean --kv-fraction?',
    ],
    [['compres', STORIES_DIR], 'rankwise: unknown command "compres"; did you mean "compress"?'],
    [
      ['eval', STORIES_DIR, '--data', TINYSTORIES_TEXT, '--max-window', '2'],
      'rankwise eval: unknown option --max-window; did you mean --max-windows?',
    ],
  ])('%j', (args, message) => {
    const r = rankwise(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${message}\n`);
  });

  it.each(['150%', '-1', 'abc'])('--kv-fraction %s', (value) => {
    const r = rankwise([...COMPRESS, '--method', 'kqsvd', '--kv-fraction', value]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `rankwise compress: --kv-fraction must be in (0, 1] (a fraction such as 0.5, or a percentage such as 50%), got "${value}"\n`,
    );
  });
});

describe('--kv-fraction 50%', () => {
  it('is the memory target 0.5; on a pipe, progress is plain lines', () => {
    const r = rankwise([
      ...COMPRESS,
      '--method',
      'kqsvd',
      '--kv-fraction',
      '50%',
      '--window',
      '64',
      '--calib-windows',
      '6',
      '--eval-windows',
      '1',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.allocation).toMatchObject({ kind: 'memory', target: 0.5 });
    expect(j.kv_fraction).toBeLessThanOrEqual(0.5);
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stderr).not.toContain('\r');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\[estimate\] /);
    for (const l of lines.slice(1)) expect(l).toMatch(/^\[[\w ]+\]( layer \d+)? \d+\/\d+(, ETA .+)?$/);
    expect(lines).toContain('[profile] layer 5 5/5, ETA < 1 s');
  });
});
