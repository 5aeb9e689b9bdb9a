/**
 * Llama 3.x (llama3 rope scaling): every compression method on the family's synthetic checkpoint, exported
 * and run in onnxruntime beside the in-memory compressed model (arch-llama3.test.ts checks the config, the
 * codec and the forward).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { METHOD_IDS } from '../../main/core/kv.ts';
import { expectCompressExport, familyCheckpoint } from './arch-helpers.ts';
import { LLAMA3_RECIPE as RECIPE } from './arch-recipes.ts';

const model = familyCheckpoint('llama3-int', RECIPE);

describe('llama 3.x: every method, exported', () => {
  it.each(METHOD_IDS)('compresses with %s and exports', async (method) => {
    const spec = await expectCompressExport(
      model.dir(),
      path.join(model.root(), `export-${method}`),
      model.root(),
      method,
    );
    expect(spec.block.rope!.scaling).toBe('llama3');
  });
});
