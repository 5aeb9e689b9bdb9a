/**
 * Issue 14, item 9: the engine names a setting by its contract field path (RankwiseError.setting); the
 * CLI says its flag, the app its control, and what crosses to the renderer (ErrorInfo) names no flag.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { inFlags } from '../../main/cli/flags.ts';
import { jobError } from '../../main/cli/engine-client.ts';
import { nameSetting, RankwiseError, toErrorInfo, type ErrorInfo } from '../../main/core/errors.ts';
import { makeWindows } from '../../main/data/windows.ts';
import { exportPlan } from '../../main/export/export.ts';
import type { CompressionPlan } from '../../main/jobs/compress.ts';
import type { CompressSettings } from '../../main/jobs/settings.ts';
import { checkSettings, keySpacesFor } from '../../main/jobs/stages/checks.ts';
import { loadJobWindows } from '../../main/jobs/stages/load.ts';
import type { ModelHandle } from '../../main/model/model.ts';
import type { ModelSpec } from '../../main/model/types.ts';
import { errorMessage } from '../../renderer/app/errors.ts';
import { tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-engine-messages-');
afterAll(() => tmp.cleanup());

const spec = { headDim: 8, maxPositions: 512, modelType: 'llama', block: { rope: {}, qkNorm: false } };
const settings = (more: Partial<CompressSettings>) =>
  ({ modelDir: 'm', calib: 'c.txt', eval: 'e.txt', method: 'ksvd', ...more }) as CompressSettings;

async function infoFrom(work: () => unknown): Promise<ErrorInfo> {
  try {
    await work();
  } catch (e) {
    expect(e).toBeInstanceOf(RankwiseError);
    return toErrorInfo(e);
  }
  throw new Error('expected an error, nothing was thrown');
}

const FLAG = /(?<![\w-])--[a-z]/;

describe('an engine error about a setting', () => {
  it.each<[string, () => unknown, string, string]>([
    [
      'kvFraction out of range',
      () => checkSettings(settings({ kvFraction: 1.5 }), spec as ModelSpec),
      '--kv-fraction must be in (0, 1], the share of the original KV cache to keep, got 1.5',
      'memory kept must be in (0, 1], the share of the original KV cache to keep, got 1.5',
    ],
    [
      'a window past the context',
      () => loadJobWindows(settings({ window: 1024 }), { spec } as unknown as ModelHandle),
      "--window 1024 is longer than the model's context of 512 tokens",
      "window length 1024 is longer than the model's context of 512 tokens",
    ],
    [
      'a key space the model rules out',
      () => keySpacesFor('folded', ['pre-rope', 'post-rope'], 'ksvd', spec as ModelSpec),
      '--key-space folded is not available for ksvd on this llama model: folded keys need a model ' +
        'without RoPE; use one of pre-rope, post-rope or auto',
      'key space folded is not available for ksvd on this llama model: folded keys need a model ' +
        'without RoPE; use one of pre-rope, post-rope or auto',
    ],
    [
      'a text too short for the window, in a folder named after the setting',
      () => makeWindows(new Int32Array(100), { window: 512, source: '/data/window/calib.txt' }),
      '/data/window/calib.txt: has 100 tokens, too few for --window 512: use a longer text or a smaller --window',
      '/data/window/calib.txt: has 100 tokens, too few for window length 512: use a longer text or a smaller ' +
        'window length',
    ],
    [
      'an export folder that exists',
      () => exportPlan({} as CompressionPlan, { out: tmp.dir }),
      `${tmp.dir}: already exists; replacing it with the new export needs --force`,
      `${tmp.dir}: already exists; replacing it with the new export needs “Replace the folder if it exists”`,
    ],
  ])('%s: the CLI names the flag, the app the control', async (_name, work, cli, app) => {
    const info = await infoFrom(work);
    expect(info.kind).toBe('bad-input');
    expect(info.setting).toBeDefined();
    expect(info.message).not.toMatch(FLAG);
    expect(inFlags(info).message).toBe(cli);
    expect(errorMessage(info)).toBe(app);
    expect(errorMessage(info)).not.toMatch(FLAG);
  });

  it('keeps its setting across a job (worker → ErrorInfo → the CLI)', async () => {
    const info = await infoFrom(() => checkSettings(settings({ budget: -1 }), spec as ModelSpec));
    const crossed = toErrorInfo(jobError(JSON.parse(JSON.stringify(info)) as ErrorInfo));
    expect(crossed).toEqual(info);
    expect(inFlags(crossed).message).toMatch(/^--budget must be a positive number/);
  });

  it("still maps the validator's field paths, which name no setting", async () => {
    const info = await infoFrom(() => checkSettings(settings({}), spec as ModelSpec));
    expect(info.message).toBe(
      'give exactly one of settings.ranks, settings.budget, settings.kvFraction or settings.maxPplIncrease',
    );
    expect(inFlags(info).message).toBe(
      'give exactly one of --k-rank/--v-rank, --budget, --kv-fraction or --max-ppl-increase',
    );
  });
});

describe('nameSetting', () => {
  const info = (message: string, setting?: string, file?: string): ErrorInfo => ({
    kind: 'bad-input',
    message: file ? `${file}: ${message}` : message,
    ...(file ? { file } : {}),
    ...(setting ? { setting } : {}),
  });
  const upper = (s: string) => s.toUpperCase();

  it('renames whole mentions only: not longer words, paths or flags', () => {
    expect(nameSetting(info('window 3; windows, heldoutWindows, a.window, --window', 'window'), upper)).toBe(
      'WINDOW 3; windows, heldoutWindows, a.window, --window',
    );
    expect(nameSetting(info('ranks.k must be; ranks.kv; ranks', 'ranks.k'), upper)).toBe(
      'RANKS.K must be; ranks.kv; ranks',
    );
  });

  it('leaves a message without a setting, or one the face has no words for, as it is', () => {
    expect(nameSetting(info('window 3'), upper)).toBe('window 3');
    expect(nameSetting(info('window 3', 'window'), () => undefined)).toBe('window 3');
  });

  it('leaves the file alone', () => {
    expect(nameSetting(info('needs force', 'force', '/exports/force'), upper)).toBe(
      '/exports/force: needs FORCE',
    );
  });
});
