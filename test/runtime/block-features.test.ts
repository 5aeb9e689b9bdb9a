/**
 * The block builder against a float64 reference for every switch of `ModelSpec.block`: each recipe below
 * turns several on at once, and the calibration layer graph, the whole-model forward and the exported
 * KV-cache decoder (opset 17) must all compute what the reference computes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FactorPair, KeySpace, LayerCompression } from '../../main/core/kv.ts';
import { narrowLayer, type NarrowLayer } from '../../main/model/fold.ts';
import { mulberry32 } from '../../main/model/prng.ts';
import type { BlockRecipe } from '../../main/model/types.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { forwardSequences } from '../../main/runtime/forward.ts';
import { buildKvDecoder, type KvDecoderSource } from '../../main/runtime/graphs/kv-decoder.ts';
import { KvDecoderSession } from '../../main/runtime/kv-session.ts';
import { layerWeightFeeds, ModelRunner, withCompression } from '../../main/runtime/runner.ts';
import { maxRelError } from '../helpers/numeric.ts';
import { erf, referenceBlock, referenceModel } from './block-reference.ts';
import {
  defaultInvFreq,
  randomModel,
  recipe,
  rowsOf,
  sourceOf,
  specFor,
  tokenIds,
  type MemoryModel,
} from './recipe-models.ts';

const CASES: [string, BlockRecipe][] = [
  [
    'Qwen3-like: q/k norms, q/k/v biases, scaled RoPE with an attention factor, a window on layer 0',
    recipe({
      qkNorm: true,
      bias: { qkv: true, o: false, mlp: false },
      rope: {
        theta: 1e6,
        invFreq: defaultInvFreq(1e6, 8).map((f, i) => (i >= 2 ? f / 8 : f)),
        attentionFactor: 1.15,
        scaling: 'yarn',
      },
      slidingWindow: [5, null],
    }),
  ],
  [
    'Gemma 2-like: (1 + w) gains, post-norms, GeGLU (tanh), both softcaps, √D embedding, alternating windows',
    recipe({
      norm: { kind: 'rms', eps: 1e-6, offset: 1 },
      postNorms: true,
      mlp: { gated: true, act: 'gelu_tanh' },
      queryScale: 0.3,
      attnSoftcap: 1.5,
      finalSoftcap: 2,
      embedScale: Math.fround(Math.sqrt(32)),
      slidingWindow: [5, null],
    }),
  ],
  [
    'Llama with attention_bias and mlp_bias: gate, up and down all carry their biases',
    recipe({ bias: { qkv: true, o: true, mlp: true } }),
  ],
  [
    'LayerNorm, learned positions, plain exact-GELU MLP with biases, window 5 on every layer',
    recipe({
      norm: { kind: 'layer', eps: 1e-5, offset: 0 },
      mlp: { gated: false, act: 'gelu' },
      bias: { qkv: true, o: true, mlp: true },
      rope: null,
      slidingWindow: [5, 5],
    }),
  ],
  [
    'GeGLU with exact GELU, a softcap and q/k norms under (1 + w) gains, window 3 on layer 1',
    recipe({
      norm: { kind: 'rms', eps: 1e-5, offset: 1 },
      qkNorm: true,
      mlp: { gated: true, act: 'gelu' },
      attnSoftcap: 2,
      slidingWindow: [null, 3],
    }),
  ],
];

const models = new Map<string, MemoryModel>();
let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create({ device: 'cpu' });
  CASES.forEach(([name, block], n) => models.set(name, randomModel(specFor(block), 100 + n)));
});
afterAll(async () => {
  await engine.release();
});

const T = 16;

it('the reference erf is right to double precision', () => {
  // Values from the closed forms' tables (Abramowitz & Stegun 7.1, extended precision).
  expect(erf(0)).toBe(0);
  expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 15);
  expect(erf(-1)).toBeCloseTo(-0.8427007929497149, 15);
  expect(erf(2.4)).toBeCloseTo(0.9993114861033549, 15);
  expect(erf(3)).toBeCloseTo(0.9999779095030014, 15);
});

describe.each(CASES)('%s', (name) => {
  const model = () => models.get(name)!;

  it('each layer graph equals the float64 reference under that layer’s own mask', async () => {
    const m = model();
    const { spec } = m;
    const D = spec.hiddenSize;
    const runner = new ModelRunner(engine, sourceOf(m));
    const B = 2;
    const ids = Int32Array.from([...tokenIds(T, 37, 5), ...tokenIds(T, 11, 3)]);
    let x = await runner.embed(ids, B, T);
    for (let layer = 0; layer < spec.numLayers; layer++) {
      const y = await runner.layer(layerWeightFeeds(spec, m.layers[layer]), x, B, T, layer);
      for (let b = 0; b < B; b++) {
        const want = referenceBlock(
          spec,
          m.layers[layer],
          rowsOf(x, b, T, D),
          spec.block.slidingWindow[layer],
        );
        const got = y.subarray(b * T * D, (b + 1) * T * D);
        expect(maxRelError(got, Float64Array.from(want.flatMap((r) => Array.from(r))))).toBeLessThan(1e-5);
      }
      x = y;
    }
  });

  it('whole-model logits equal the float64 reference', async () => {
    const m = model();
    const runner = new ModelRunner(engine, sourceOf(m));
    const seqs = [tokenIds(T, 37, 5), tokenIds(9, 13, 2)];
    const { logits } = await forwardSequences(runner, seqs, { logits: 'all' });
    seqs.forEach((ids, s) => {
      const want = Float64Array.from(
        referenceModel(m.spec, m.emb, m.layers, ids).flatMap((r) => Array.from(r)),
      );
      expect(maxRelError(logits![s], want)).toBeLessThan(1e-4);
      // A degenerate model would pass trivially.
      expect(Math.max(...want) - Math.min(...want)).toBeGreaterThan(0.5);
    });
  });

  it('the exported decoder, prefill then one token at a time, equals the reference; presents grow', async () => {
    const m = model();
    const { spec } = m;
    const V = spec.vocabSize;
    const d = spec.headDim;
    const uncompressed = (i: number): NarrowLayer => ({
      weights: m.layers[i],
      layout: { kRank: d, vRank: d, keySpace: spec.block.rope ? 'pre-rope' : 'folded' },
    });
    const source: KvDecoderSource = {
      spec,
      loadEmbeddings: async () => m.emb,
      loadNarrowLayer: async (i) => uncompressed(i),
    };
    const info = {
      numKvHeads: spec.numKvHeads,
      vocabSize: V,
      layers: m.layers.map(() => ({ kRank: d, vRank: d })),
    };
    const session = await KvDecoderSession.create(await buildKvDecoder(source), info);
    const ids = tokenIds(T, 37, 5);
    const want = referenceModel(spec, m.emb, m.layers, ids);
    const prompt = 3;
    const prefill = await session.prefill(ids.subarray(0, prompt));
    for (let t = 0; t < prompt; t++) {
      expect(maxRelError(prefill.subarray(t * V, (t + 1) * V), want[t])).toBeLessThan(1e-4);
    }
    for (let t = prompt; t < T; t++) {
      const logits = await session.step(ids[t]);
      expect(maxRelError(logits, want[t])).toBeLessThan(1e-4);
      for (const c of session.cache()) {
        expect(c.key.dims).toEqual([1, spec.numKvHeads, t + 1, d]);
        expect(c.value.dims).toEqual([1, spec.numKvHeads, t + 1, d]);
      }
    }
    // The whole sequence at once agrees too (windows shorter than the prompt inside one call).
    const whole = await session.prefill(ids);
    expect(maxRelError(whole, Float64Array.from(want.flatMap((r) => Array.from(r))))).toBeLessThan(1e-4);
    await session.release();
  });
});

/** Independent random d×r factors, as kv-decoder.int.test.ts draws them. */
function randomPairs(heads: number, d: number, r: number, rng: () => number): FactorPair[] {
  const f = () => Float64Array.from({ length: d * r }, () => rng() - 0.5);
  return Array.from({ length: heads }, () => ({ a: f(), b: f(), rank: r }));
}

function compression(m: MemoryModel, keySpace: KeySpace, kRank: number, vRank: number, seed: number) {
  const rng = mulberry32(seed);
  const { numKvHeads: Hkv, headDim: d } = m.spec;
  return {
    keySpace,
    kRank,
    vRank,
    keys: randomPairs(Hkv, d, kRank, rng),
    values: randomPairs(Hkv, d, vRank, rng),
  } satisfies LayerCompression;
}

describe('compressed layers in the exported decoder keep every recipe feature', () => {
  const cases: [string, KeySpace[]][] = [
    [CASES[1][0], ['pre-rope', 'post-rope']],
    [CASES[0][0], ['post-rope', 'post-rope']],
    [CASES[3][0], ['folded', 'folded']],
  ];
  it.each(cases)('%s, key spaces %j', async (name, spaces) => {
    const m = models.get(name)!;
    const { spec } = m;
    const V = spec.vocabSize;
    const layers = spaces.map((s, i) => compression(m, s, 3 + i, 4 + i, 7 * i + 1));
    const source: KvDecoderSource = {
      spec,
      loadEmbeddings: async () => m.emb,
      loadNarrowLayer: async (i) => narrowLayer(spec, m.layers[i], layers[i]),
    };
    const info = {
      numKvHeads: spec.numKvHeads,
      vocabSize: V,
      layers: layers.map((c) => ({ kRank: c.kRank, vRank: c.vRank })),
    };
    const session = await KvDecoderSession.create(await buildKvDecoder(source), info);
    const ids = tokenIds(T, 29, 4);
    const got = new Float32Array(T * V);
    got.set(await session.prefill(ids.subarray(0, 4)));
    for (let t = 4; t < T; t++) got.set(await session.step(ids[t]), t * V);
    const runner = new ModelRunner(engine, withCompression(sourceOf(m), layers));
    const want = (await forwardSequences(runner, [ids], { logits: 'all' })).logits![0];
    expect(maxRelError(got, want)).toBeLessThan(1e-4);
    session.cache().forEach((c, i) => {
      expect(c.key.dims).toEqual([1, spec.numKvHeads, T, layers[i].kRank]);
      expect(c.value.dims).toEqual([1, spec.numKvHeads, T, layers[i].vRank]);
    });
    await session.release();
  });

  it('refuses pre-RoPE key latents under per-head key norms, which need whole keys', async () => {
    const m = models.get(CASES[0][0])!;
    const c = compression(m, 'pre-rope', 3, 4, 5);
    const source: KvDecoderSource = {
      spec: m.spec,
      loadEmbeddings: async () => m.emb,
      loadNarrowLayer: async (i) => narrowLayer(m.spec, m.layers[i], c),
    };
    await expect(buildKvDecoder(source)).rejects.toThrow(/per-head q\/k norms/);
  });
});
