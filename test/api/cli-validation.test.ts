/**
 * Audit #13, item 9: `rankwise compress` keeps its own flag parsing but ends in the engine's shared
 * checks, so what the API refuses the CLI refuses too (exit 2, the flag named), before any work starts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { runCli } from '../helpers/cli.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-cli-validation-');
afterAll(() => tmp.cleanup());

const SMALL_TEXT = path.join(tmp.dir, 'small.txt');
fs.writeFileSync(SMALL_TEXT, fs.readFileSync(TINYSTORIES_TEXT).subarray(0, 20_000));

const COMPRESS = [
  'compress',
  STORIES_DIR,
  '--calib',
  SMALL_TEXT,
  '--eval',
  SMALL_TEXT,
  '--method',
  'ksvd',
  '--window',
  '32',
  '--calib-windows',
  '2',
  '--eval-windows',
  '1',
  '--key-space',
  'pre-rope',
  '--quiet',
];

describe('compress refuses what the API refuses', () => {
  it.each<[string, string[], RegExp]>([
    [
      'layer weights of the wrong length',
      ['--budget', '0.05', '--layer-weights', '1,2'],
      /--layer-weights.*5/,
    ],
    [
      'a negative layer weight',
      ['--budget', '0.05', '--layer-weights', '1,-1,1,1,1'],
      /weight 2 of --layer-weights/,
    ],
    [
      'layer weights with fixed ranks (which allocate nothing)',
      ['--k-rank', '2', '--v-rank', '2', '--layer-weights', '1,1,1,1,1'],
      /--layer-weights/,
    ],
    ['a rank past the head dimension', ['--k-rank', '1000', '--v-rank', '2'], /--k-rank.*8/],
    ['a window past the context', ['--budget', '0.05', '--window', '4096'], /--window.*512/],
    ['kv-fraction 1.5', ['--kv-fraction', '1.5'], /--kv-fraction/],
    ['budget and kv-fraction at once', ['--budget', '0.05', '--kv-fraction', '0.5'], /exactly one of/],
    ['lr given to another method than stief', ['--budget', '0.05', '--lr', '0.1'], /--lr/],
  ])('%s', async (_name, more, field) => {
    const r = await runCli([...COMPRESS, ...more]);
    expect(r.stderr).toMatch(field);
    expect(r.code, r.stderr).toBe(2);
  });

  it('a key space the model rules out, by its flag in the text and the JSON', async () => {
    const args = COMPRESS.map((a) => (a === 'pre-rope' ? 'folded' : a));
    const r = await runCli([...args, '--k-rank', '2', '--v-rank', '2', '--json']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^rankwise compress: --key-space folded is not available for ksvd/m);
    const { error } = JSON.parse(r.stdout) as { error: { message: string; setting: string } };
    expect(error).toMatchObject({ kind: 'bad-input', setting: 'keySpace' });
    expect(error.message).toMatch(/^--key-space folded/);
  });

  it('still runs a valid job', async () => {
    const r = await runCli([...COMPRESS, '--k-rank', '2', '--v-rank', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      method: 'ksvd',
      layers: [{ k_rank: 2, v_rank: 2 }, {}, {}, {}, {}],
    });
  });
});
