import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { METHOD_IDS } from '../../main/methods/index.ts';
import type { MethodId } from '../../main/core/kv.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import { checkExportRoundTrip } from '../helpers/export-check.ts';
import { TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { tinyGpt2, tinyLlama } from '../helpers/recipes.ts';

const tmp = tempDir();
const LLAMA = () => path.join(tmp.dir, 'llama');
const GPT2 = () => path.join(tmp.dir, 'gpt2');
// the synthetic tokenizer has no fast path: an excerpt keeps tokenising out of the timings
const TEXT = () => path.join(tmp.dir, 'excerpt.txt');
beforeAll(async () => {
  fs.writeFileSync(TEXT(), fs.readFileSync(TINYSTORIES_TEXT, 'utf8').slice(0, 40_000));
  await writeSyntheticModel(LLAMA(), tinyLlama(31, { numLayers: 3 }));
  await writeSyntheticModel(GPT2(), tinyGpt2(32, { numLayers: 3 }));
});
afterAll(() => tmp.cleanup());

const base = {
  window: 64,
  calibWindows: 4,
  evalWindows: 2,
  stief: { steps: 4, trainWindows: 1 },
} as const;

const cases: [MethodId, string][] = METHOD_IDS.flatMap(
  (m) =>
    [
      [m, 'llama'],
      [m, 'gpt2'],
    ] as [MethodId, string][],
);

describe('export of synthetic models (llama: GQA with q/k/v biases; GPT-2: fused c_attn)', () => {
  it.each(cases)('%s on %s: round trip through the folder and the ONNX decoder', async (method, which) => {
    const dir = which === 'llama' ? LLAMA() : GPT2();
    const out = path.join(tmp.dir, `${method}-${which}`);
    const { spec } = await checkExportRoundTrip(
      { ...base, calib: TEXT(), eval: TEXT(), modelDir: dir, method, ranks: { k: 4, v: 2 } },
      out,
    );
    // auto key space: either RoPE space on llama (KQ-SVD may pick post-RoPE), folded without RoPE
    const spaces = which === 'llama' ? ['pre-rope', 'post-rope'] : ['folded'];
    for (const l of spec.kvCompression!) {
      expect(spaces).toContain(l.keySpace);
      expect([l.kRank, l.vRank]).toEqual([4, 2]);
    }
  });
});

describe('thin keys with attention in the thin space (R3)', () => {
  it.each([3, 4])(
    'k = %i, fine-tuned: the folder and the ONNX decoder give the in-memory logits',
    async (k) => {
      const out = path.join(tmp.dir, `thin-rope-${k}`);
      const { report, spec } = await checkExportRoundTrip(
        {
          ...base,
          calib: TEXT(),
          eval: TEXT(),
          modelDir: LLAMA(),
          method: 'thinkeys',
          keySpace: 'thin-rope',
          ranks: { k, v: 8 },
          finetune: { steps: 6 },
        },
        out,
      );
      for (const l of spec.kvCompression!) {
        expect(l.keySpace).toBe('thin-rope');
        expect(l.ropePlanes).toHaveLength(Math.floor(k / 2));
      }
      // fine-tuning ran on thin-space keys and moved them: what is exported is not the planes' selection
      expect(report.finetune?.layers.every((l) => l.stopped !== 'not-trainable')).toBe(true);
      expect(report.finetune?.layers.some((l) => l.bestStep > 0)).toBe(true);
    },
  );
});
