import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matmul } from '../../native-kernels/index.ts';
import { compress } from '../../main/jobs/compress.ts';
import { openModel, type ModelHandle } from '../../main/model/model.ts';
import { loadTokenizer } from '../../main/model/tokenizer.ts';
import { loadWindows } from '../../main/data/windows.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { ModelRunner } from '../../main/runtime/runner.ts';
import { captureGrams } from '../../main/runtime/capture.ts';
import { METHOD_IDS, methodById } from '../../main/methods/index.ts';
import { transpose } from '../../main/methods/linalg.ts';
import { truncatePair, kqsvdPair, logitError2 } from '../../main/methods/kqsvd.ts';
import { eigh } from '../../native-kernels/index.ts';
import type { LayerCapture } from '../../main/methods/types.ts';
import type { KeySpace } from '../../main/core/kv.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { tinyGpt2 } from '../helpers/recipes.ts';

const tmp = tempDir();
let model: ModelHandle;
let engine: Engine;
let capture: LayerCapture;
const GPT2_DIR = () => `${tmp.dir}/gpt2`;

beforeAll(async () => {
  model = await openModel(STORIES_DIR);
  engine = await Engine.create();
  const tok = await loadTokenizer(STORIES_DIR);
  const { windows } = await loadWindows(TINYSTORIES_TEXT, tok, { window: 256, count: 6 });
  const grams = await captureGrams(new ModelRunner(engine, model), windows);
  capture = { layer: 1, weights: await model.loadLayer(1), grams: grams[1] };
  await writeSyntheticModel(GPT2_DIR(), tinyGpt2(21));
});
afterAll(async () => {
  await engine.release();
  await model.close();
  tmp.cleanup();
});

describe('methods.md §11 invariants on stories260K', () => {
  it.each(['ksvd', 'eigen', 'thinkeys'])(
    '%s: every basis is orthonormal (‖PᵀP − I‖ < 1e-6) at every rank',
    (id) => {
      const spec = model.spec;
      const d = spec.headDim;
      const method = methodById(id);
      for (const space of method.keySpaces(spec)) {
        const fit = method.fit(capture, spec, space);
        for (let r = 1; r <= d; r++) {
          const c = fit.at(r, r);
          for (const p of [...(c.keys ?? []), ...(c.values ?? [])]) {
            expect(p.a).toEqual(p.b);
            const ptp = matmul(transpose(p.a, d, r), r, d, p.a, r);
            for (let i = 0; i < r; i++)
              for (let j = 0; j < r; j++)
                expect(Math.abs(ptp[i * r + j] - (i === j ? 1 : 0))).toBeLessThan(1e-6);
          }
        }
      }
    },
  );

  it('K-SVD’s key reconstruction error tr(C) − Σ_{i≤r} λ_i and KQ-SVD’s logit error never grow with rank', () => {
    const d = model.spec.headDim;
    for (let g = 0; g < model.spec.numKvHeads; g++) {
      const { values } = eigh(capture.grams.kPre[g], d);
      const total = values.reduce((a, b) => a + b, 0);
      let kept = 0;
      let prevK = Infinity;
      let prevQ = Infinity;
      const pair = kqsvdPair(capture.grams.kPost[g], capture.grams.qPost[g], d);
      for (let r = 1; r <= d; r++) {
        kept += values[r - 1];
        expect(total - kept).toBeLessThanOrEqual(prevK + 1e-9 * total);
        prevK = total - kept;
        const e = logitError2(capture.grams.kPost[g], capture.grams.qPost[g], truncatePair(pair, d, r), d);
        expect(e).toBeLessThanOrEqual(prevQ * (1 + 1e-9) + 1e-9);
        prevQ = e;
      }
    }
  });

  const fullRankCases: [string, string, KeySpace][] = [];
  for (const id of METHOD_IDS) {
    for (const space of methodById(id).keySpaces({ block: { rope: {}, qkNorm: false } } as never))
      fullRankCases.push([id, 'stories', space]);
    fullRankCases.push([id, 'gpt2', 'folded']);
  }
  it.each(fullRankCases)(
    '%s on %s, %s: full rank reproduces the original perplexity (1e-5)',
    async (method, which, keySpace) => {
      const dir = which === 'stories' ? STORIES_DIR : GPT2_DIR();
      const d = which === 'stories' ? 8 : 8;
      const r = await compress({
        modelDir: dir,
        calib: TINYSTORIES_TEXT,
        eval: TINYSTORIES_TEXT,
        method: method as never,
        ranks: { k: d, v: d },
        keySpace,
        window: 64,
        calibWindows: 4,
        evalWindows: 4,
      });
      expect(r.layers.every((l) => l.keySpace === keySpace)).toBe(true);
      expect(Math.abs(r.perplexity.compressed / r.perplexity.original - 1)).toBeLessThan(1e-5);
      for (const l of r.layers) expect(l.error).toBeLessThan(1e-5);
    },
  );
});
