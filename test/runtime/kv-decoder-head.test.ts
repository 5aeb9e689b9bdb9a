/**
 * A 16-bit output head is cast and multiplied slice by slice of its rows, so a runtime that casts as it runs
 * never holds the whole table in float32: the decoder's logits must not change, tied head or not, with
 * onnxruntime's optimisations on (Slice and Cast folded) or off (the export's check).
 */
import { describe, expect, it } from 'vitest';
import { buildKvDecoder } from '../../main/runtime/graphs/kv-decoder.ts';
import { KvDecoderSession } from '../../main/runtime/kv-session.ts';
import { modelProtoType } from '../../main/runtime/onnx/proto.ts';
import { maxRelError } from '../helpers/numeric.ts';
import { syntheticModels, tinyLlama } from '../helpers/recipes.ts';

const { models } = syntheticModels({
  tied: tinyLlama(71, { dtype: 'BF16', vocabSize: 300 }),
  untied: tinyLlama(72, { dtype: 'BF16', vocabSize: 300, tie: false }),
});

const BF16 = { cache: 'float16', weights: 'bfloat16' } as const;

function sliceCount(bytes: Uint8Array): number {
  const type = modelProtoType();
  const m = type.toObject(type.decode(bytes), { arrays: true }) as { graph: { node: { opType: string }[] } };
  return m.graph.node.filter((n) => n.opType === 'Slice').length;
}

describe('a 16-bit output head in slices', () => {
  it.each(['tied', 'untied'])('%s: the same logits as the whole head, optimised or not', async (name) => {
    const model = models[name];
    const spec = model.spec;
    const source = {
      spec,
      loadEmbeddings: () => model.loadEmbeddings(),
      loadNarrowLayer: (i: number) => model.loadNarrowLayer(i),
    };
    const whole = await buildKvDecoder(source, { precision: BF16 });
    // 7 rows per slice: 43 slices of the 300-row head, the last one short
    const sliced = await buildKvDecoder(source, { precision: BF16, headSliceBytes: 4 * spec.hiddenSize * 7 });
    expect(sliceCount(sliced) - sliceCount(whole)).toBe(Math.ceil(300 / 7));
    const info = {
      numKvHeads: spec.numKvHeads,
      vocabSize: spec.vocabSize,
      layers: Array.from({ length: spec.numLayers }, () => ({ kRank: spec.headDim, vRank: spec.headDim })),
    };
    const ids = Int32Array.from({ length: 9 }, (_, t) => (t * 37 + 5) % spec.vocabSize);
    for (const graphOptimizationLevel of ['all', 'disabled'] as const) {
      const run = async (bytes: Uint8Array) => {
        const s = await KvDecoderSession.create(bytes, info, { graphOptimizationLevel });
        const first = await s.prefill(ids);
        const next = await s.step(3);
        return { first, next };
      };
      const a = await run(whole);
      const b = await run(sliced);
      expect(b.first).toHaveLength(ids.length * spec.vocabSize);
      expect(maxRelError(b.first, a.first)).toBeLessThan(1e-6);
      expect(maxRelError(b.next, a.next)).toBeLessThan(1e-6);
    }
  });
});
