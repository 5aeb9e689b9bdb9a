/**
 * Qwen3 (per-head q/k norms, a sliding layer): every compression method on the family's synthetic
 * checkpoint, exported and run in onnxruntime beside the in-memory compressed model (arch-qwen3.test.ts
 * checks the config, the codec and the forward).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { METHOD_IDS, type MethodId } from '../../main/core/kv.ts';
import { compress } from '../../main/jobs/compress.ts';
import { methodById } from '../../main/methods/index.ts';
import { openModel } from '../../main/model/model.ts';
import { expectCompressExport, familyCheckpoint, expectCompressRefused, excerpt } from './arch-helpers.ts';
import { QWEN3_RECIPE as RECIPE } from './arch-recipes.ts';
import { expectRankwiseError } from './fixtures.ts';

const model = familyCheckpoint('qwen3-int', RECIPE);

describe('qwen3: every method, exported', () => {
  // The q/k norms need whole heads, so only post-RoPE keys export; these methods fit pre-RoPE keys only.
  const PRE_ROPE_ONLY: readonly MethodId[] = ['eigen', 'thinkeys', 'stief'];

  it.each(METHOD_IDS.filter((m) => !PRE_ROPE_ONLY.includes(m)))(
    'compresses with %s (auto: post-RoPE keys) and exports',
    async (method) => {
      const spec = await expectCompressExport(
        model.dir(),
        path.join(model.root(), `export-${method}`),
        model.root(),
        method,
      );
      expect(spec.block.qkNorm).toBe(true);
      expect(spec.kvCompression!.map((l) => l.keySpace)).toEqual(['post-rope', 'post-rope']);
    },
  );

  it.each(PRE_ROPE_ONLY)('refuses to compress with %s, naming the q/k norms', async (method) => {
    await expectCompressRefused(
      model.dir(),
      model.root(),
      method,
      new RegExp(
        `^${method} cannot compress the keys of this qwen3 model: it fits pre-rope keys, but per-head q/k norms`,
      ),
    );
  });
});

describe('qwen3 key spaces', () => {
  const job = (method: (typeof METHOD_IDS)[number], keySpace?: 'auto' | 'pre-rope' | 'post-rope') =>
    compress({
      modelDir: model.dir(),
      calib: excerpt(model.root()),
      eval: excerpt(model.root()),
      method,
      ranks: { k: 4, v: 2 },
      keySpace,
      window: 32,
      calibWindows: 2,
      evalWindows: 1,
    });

  it('every method offers post-RoPE keys only, so the default and auto are post-rope', async () => {
    const m = await openModel(model.dir());
    try {
      const spaces = Object.fromEntries(METHOD_IDS.map((id) => [id, methodById(id).keySpaces(m.spec)]));
      expect(spaces).toEqual({
        kqsvd: ['post-rope'],
        ksvd: ['post-rope'],
        eigen: [],
        thinkeys: [],
        stief: [],
      });
    } finally {
      await m.close();
    }
    // ksvd defaults to pre-RoPE keys on other models
    const report = await job('ksvd');
    expect(report.layers.map((l) => l.keySpace)).toEqual(['post-rope', 'post-rope']);
  });

  it('refuses keySpace pre-rope before fitting, naming the q/k norms', async () => {
    await expectRankwiseError(
      job('kqsvd', 'pre-rope'),
      'bad-input',
      /^keySpace pre-rope is not available for kqsvd on this qwen3 model: per-head q\/k norms sit between the q\/k projections and RoPE, so a pre-rope key basis cannot be folded into k_proj; use one of post-rope or auto$/,
    );
  });

  it('refuses a method that fits pre-RoPE keys only, and names those that can', async () => {
    await expectRankwiseError(
      job('eigen'),
      'bad-input',
      /^eigen cannot compress the keys of this qwen3 model: it fits pre-rope keys, but per-head q\/k norms sit between the q\/k projections and RoPE, .*; use kqsvd or ksvd$/,
    );
  });
});
