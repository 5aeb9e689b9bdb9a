/**
 * Phi-3 (fused qkv_proj and gate_up_proj, a sliding window): every compression method on the family's
 * synthetic checkpoint, exported and run in onnxruntime beside the in-memory compressed model (arch-
 * phi3.test.ts checks the config, the codec and the forward).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { METHOD_IDS } from '../../main/core/kv.ts';
import { openModel } from '../../main/model/model.ts';
import { expectCompressExport, familyCheckpoint } from './arch-helpers.ts';
import { PHI3_RECIPE as RECIPE } from './arch-recipes.ts';

const model = familyCheckpoint('phi3-int', RECIPE);

describe('phi3: every method, exported', () => {
  it.each(METHOD_IDS)('compresses with %s and exports; the narrowed qkv_proj reloads', async (method) => {
    const out = path.join(model.root(), `export-${method}`);
    const spec = await expectCompressExport(model.dir(), out, model.root(), method);
    const m = await openModel(out);
    try {
      // q keeps its 4 heads of 8; post-RoPE keys keep whole heads (their bases sit beside the projection)
      spec.kvCompression!.forEach((l, i) => {
        const kRows = l.keySpace === 'post-rope' ? 8 : l.kRank;
        expect(m.checkpoint.info(`model.layers.${i}.self_attn.qkv_proj.weight`).shape).toEqual([
          4 * 8 + 2 * kRows + 2 * l.vRank,
          32,
        ]);
      });
    } finally {
      await m.close();
    }
  });
});
