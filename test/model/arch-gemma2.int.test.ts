/**
 * Gemma 2 (GeGLU, (1 + w) norms, soft-capping, alternating windows): every compression method on the
 * family's synthetic checkpoint, exported and run in onnxruntime beside the in-memory compressed model
 * (arch-gemma2.test.ts checks the config, the codec and the forward).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { METHOD_IDS } from '../../main/core/kv.ts';
import { expectCompressExport, familyCheckpoint } from './arch-helpers.ts';
import { GEMMA2_RECIPE as RECIPE } from './arch-recipes.ts';

const model = familyCheckpoint('gemma2-int', RECIPE);

describe('gemma2: every method, exported', () => {
  it.each(METHOD_IDS)('compresses with %s and exports', async (method) => {
    const spec = await expectCompressExport(
      model.dir(),
      path.join(model.root(), `export-${method}`),
      model.root(),
      method,
    );
    expect(spec.block.slidingWindow).toEqual([5, null]);
  });
});
