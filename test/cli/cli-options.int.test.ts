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

describe('the end-to-end objective, fine-tuning and the thin space refuse bad values (exit 2), in one line', () => {
  const increase = (v: string) =>
    `--max-ppl-increase must be above 0 and at most 900 % (a fraction such as 0.05, or a percentage such as 5%), got "${v}"`;
  it.each([
    [['--max-ppl-increase', '1000%'], increase('1000%')],
    [['--max-ppl-increase', '0'], increase('0')],
    [['--max-ppl-increase', 'abc'], increase('abc')],
    [['--kv-fraction', '0.5', '--finetune-steps', '0'], '--finetune-steps must be an integer ≥ 1, got "0"'],
    [['--kv-fraction', '0.5', '--finetune-steps', '-3'], '--finetune-steps must be an integer ≥ 1, got "-3"'],
    [
      ['--kv-fraction', '0.5', '--finetune-steps', '5', '--finetune-lr', '0'],
      '--finetune-lr must be a positive number, got "0"',
    ],
    [
      ['--kv-fraction', '0.5', '--finetune-steps', '5', '--finetune-lr', 'abc'],
      '--finetune-lr must be a positive number, got "abc"',
    ],
    [
      ['--kv-fraction', '0.5', '--finetune-lr', '0.1'],
      '--finetune-lr needs --finetune-steps: without steps nothing is fine-tuned',
    ],
    [
      ['--budget', '0.05', '--objective', 'e2e'],
      '--objective e2e allocates by predicted perplexity, and --budget bounds layer errors; state the target as --max-ppl-increase, or use --objective layer',
    ],
    [
      // the thin space is thin keys' alone
      ['--kv-fraction', '0.5', '--key-space', 'thin-rope'],
      '--key-space thin-rope is not available for kqsvd on this llama model; use one of post-rope, pre-rope or auto',
    ],
    [
      ['--max-ppl-increase', '5%', '--objective', 'layer'],
      '--max-ppl-increase is a perplexity target, which only --objective e2e predicts; use --kv-fraction or --budget with --objective layer',
    ],
  ])('%j', (args, message) => {
    const r = rankwise([...COMPRESS, '--method', 'kqsvd', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter((l) => !l.startsWith('[estimate]'))).toEqual([
      `rankwise compress: ${message}`,
      '',
    ]);
  });
});

describe('--max-ppl-increase 20% --finetune-steps 4', () => {
  it('allocates end to end, predicts the perplexity, fine-tunes every compressed layer', () => {
    const r = rankwise([
      ...COMPRESS,
      '--method',
      'ksvd',
      '--max-ppl-increase',
      '20%',
      '--finetune-steps',
      '4',
      '--window',
      '64',
      '--calib-windows',
      '6',
      '--eval-windows',
      '2',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.objective).toBe('e2e');
    expect(j.allocation).toMatchObject({ kind: 'perplexity', target: 0.2 });
    expect(j.effects).toHaveLength(5);
    expect(Number.isFinite(j.predicted.perplexity)).toBe(true);
    expect(j.predicted.perplexity).toBeCloseTo(j.perplexity.original * Math.exp(j.predicted.nll_increase), 9);
    const compressed = j.layers.filter(
      (l: { k_rank: number; v_rank: number }) => l.k_rank < 8 || l.v_rank < 8,
    );
    expect(j.finetune.layers).toHaveLength(compressed.length);
    for (const l of j.finetune.layers) {
      expect(l.heldout_loss.best).toBeLessThanOrEqual(l.heldout_loss.start);
      expect(l.steps).toBeLessThanOrEqual(4);
    }
    const lines = r.stderr.trimEnd().split('\n');
    for (const l of lines.slice(1))
      expect(l).toMatch(/^\[[\w ]+\]( layer \d+)?( step \d+)? \d+\/\d+(, ETA .+)?$/);
    expect(lines.some((l) => l.startsWith('[effects]'))).toBe(true);
    expect(lines.some((l) => l.startsWith('[finetune] layer'))).toBe(true);
  });
});

describe('--key-space thin-rope', () => {
  it('compresses thin keys in the thin space, and says that without fine-tuning it keeps whole planes', () => {
    const small = ['--window', '64', '--calib-windows', '4', '--eval-windows', '2', '--json'];
    const thin = ['--method', 'thinkeys', '--key-space', 'thin-rope', '--k-rank', '4', '--v-rank', '8'];
    const r = rankwise([...COMPRESS, ...thin, ...small]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(
      'note: --key-space thin-rope keeps whole RoPE planes of each head until fine-tuned; ' +
        'add --finetune-steps (300 recovers most of the loss on stories260K)',
    );
    const j = JSON.parse(r.stdout);
    expect(j.layers.map((l: { key_space: string }) => l.key_space)).toEqual(Array(5).fill('thin-rope'));
    expect(j.perplexity.compressed).toBeGreaterThan(j.perplexity.original);
    // with fine-tuning the note is not needed
    const tuned = rankwise([...COMPRESS, ...thin, '--finetune-steps', '2', ...small]);
    expect(tuned.code, tuned.stderr).toBe(0);
    expect(tuned.stderr).not.toContain('note: --key-space thin-rope');
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
