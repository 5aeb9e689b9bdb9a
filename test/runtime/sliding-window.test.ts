/**
 * Sliding-window attention, exactly: a query at t sees keys max(0, t − W + 1) … t, chosen per layer
 * (Gemma 2 alternates), in the masks, the calibration passes that run layers one at a time, and the
 * exported decoder's cache (left padding included). Also RoPE tables from the recipe's frequencies.
 */
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NarrowLayer } from '../../main/model/fold.ts';
import { captureGrams, heldoutLayers } from '../../main/runtime/capture.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { forwardSequences } from '../../main/runtime/forward.ts';
import { buildKvDecoder } from '../../main/runtime/graphs/kv-decoder.ts';
import { LayerErrorMeter } from '../../main/runtime/layer-error.ts';
import { KvDecoderSession, type KvSessionInfo } from '../../main/runtime/kv-session.ts';
import { layerWeightFeeds, ModelRunner } from '../../main/runtime/runner.ts';
import { causalMask, layerWindow, ropeTables, ropeTablesIn } from '../../main/runtime/rope.ts';
import { maxRelError } from '../helpers/numeric.ts';
import { referenceBlock, referenceModel } from './block-reference.ts';
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
import { twoRowRunner } from '../helpers/ort-batch.ts';

let engine: Engine;
let alternating: MemoryModel;
beforeAll(async () => {
  engine = await Engine.create({ device: 'cpu' });
  alternating = randomModel(
    specFor(recipe({ slidingWindow: [3, null], attnSoftcap: 2, postNorms: true, qkNorm: true })),
    31,
  );
});
afterAll(async () => {
  await engine.release();
});

describe('masks', () => {
  it('a window W shows query t exactly keys max(0, t − W + 1) … t', () => {
    const T = 9;
    for (const W of [1, 2, 5, 9, 20]) {
      const m = causalMask(T, W);
      for (let t = 0; t < T; t++) {
        for (let s = 0; s < T; s++) {
          const visible = s <= t && s >= Math.max(0, t - W + 1);
          expect(m[t * T + s], `W=${W} t=${t} s=${s}`).toBe(visible ? 0 : Math.fround(-1e30));
        }
      }
    }
    // A window at least T long is plain causal attention.
    expect(causalMask(T, T)).toEqual(causalMask(T));
  });

  it('a layer index picks the layer’s window; without one only uniform windows resolve', () => {
    const block = recipe({ slidingWindow: [4, null, 4] });
    expect(layerWindow(block, 0)).toBe(4);
    expect(layerWindow(block, 1)).toBeNull();
    expect(() => layerWindow(block)).toThrow(/different attention windows/);
    expect(() => layerWindow(block, 3)).toThrow(/no sliding-window entry/);
    expect(layerWindow(recipe({ slidingWindow: [6, 6] }))).toBe(6);
    expect(layerWindow(recipe())).toBeNull();
  });

  it('a runner refuses to guess which of alternating windows applies', async () => {
    const m = alternating;
    const runner = new ModelRunner(engine, sourceOf(m));
    const x = await runner.embed(tokenIds(6, 5, 1), 1, 6);
    await expect(runner.layer(layerWeightFeeds(m.spec, m.layers[0]), x, 1, 6)).rejects.toThrow(
      /different attention windows/,
    );
  });

  it('window 1 attends to the token itself alone; a window ≥ T equals full attention', async () => {
    const T = 10;
    for (const W of [1, T]) {
      const m = randomModel(specFor(recipe({ slidingWindow: [W, null] })), 5);
      const runner = new ModelRunner(engine, sourceOf(m));
      const x = await runner.embed(tokenIds(T, 7, 2), 1, T);
      const feeds = layerWeightFeeds(m.spec, m.layers[0]);
      const y = await runner.layer(feeds, x, 1, T, 0);
      const want = referenceBlock(m.spec, m.layers[0], rowsOf(x, 0, T, m.spec.hiddenSize), W);
      expect(maxRelError(y, Float64Array.from(want.flatMap((r) => Array.from(r))))).toBeLessThan(1e-5);
      if (W === T) expect(y).toEqual(await runner.layer(feeds, x, 1, T, 1));
    }
  });
});

describe('calibration passes run each layer under its own window', () => {
  it('held-out samples carry their layer, reproduce it, and measure zero error uncompressed', async () => {
    const m = alternating;
    const runner = new ModelRunner(engine, sourceOf(m));
    const windows = [tokenIds(12, 37, 5), tokenIds(12, 11, 9), tokenIds(7, 3, 1)];
    // The capture pass walks every layer; with a wrong or missing layer index it would throw or drift.
    const grams = await captureGrams(runner, windows);
    expect(grams.map((g) => g.tokens)).toEqual([31, 31]);
    const D = m.spec.hiddenSize;
    for await (const held of heldoutLayers(runner, windows)) {
      for (const b of held.batches) {
        expect(b.layer).toBe(held.layer);
        const want = referenceBlock(
          m.spec,
          held.weights,
          rowsOf(b.x, 0, b.T, D),
          m.spec.block.slidingWindow[held.layer],
        );
        expect(
          maxRelError(b.y.subarray(0, b.T * D), Float64Array.from(want.flatMap((r) => Array.from(r)))),
        ).toBeLessThan(1e-5);
      }
      const meter = new LayerErrorMeter(runner, held.weights, held.batches);
      expect(await meter.error(null)).toBe(0);
    }
  });
});

describe('exported decoder', () => {
  const info = (m: MemoryModel): KvSessionInfo => ({
    numKvHeads: m.spec.numKvHeads,
    vocabSize: m.spec.vocabSize,
    layers: m.layers.map(() => ({ kRank: m.spec.headDim, vRank: m.spec.headDim })),
  });
  const decoder = (m: MemoryModel) =>
    buildKvDecoder({
      spec: m.spec,
      loadEmbeddings: async () => m.emb,
      loadNarrowLayer: async (i): Promise<NarrowLayer> => ({
        weights: m.layers[i],
        layout: { kRank: m.spec.headDim, vRank: m.spec.headDim, keySpace: 'pre-rope' },
      }),
    });

  it('decoding one token at a time past the window equals the whole-sequence forward', async () => {
    const m = alternating;
    const V = m.spec.vocabSize;
    const T = 16;
    const ids = tokenIds(T, 23, 6);
    const session = await KvDecoderSession.create(await decoder(m), info(m));
    const got = new Float32Array(T * V);
    got.set(await session.prefill(ids.subarray(0, 1)));
    for (let t = 1; t < T; t++) got.set(await session.step(ids[t]), t * V);
    // The cache keeps every token; the window is a mask, not an eviction.
    for (const c of session.cache()) expect(c.key.dims[2]).toBe(T);
    const runner = new ModelRunner(engine, sourceOf(m));
    const want = (await forwardSequences(runner, [ids], { logits: 'all' })).logits![0];
    expect(maxRelError(got, want)).toBeLessThan(1e-4);
    const ref = referenceModel(m.spec, m.emb, m.layers, ids);
    expect(maxRelError(got, Float64Array.from(ref.flatMap((r) => Array.from(r))))).toBeLessThan(1e-4);
    await session.release();
  });

  it('a left-padded batch of two gives each row the logits it has alone', async () => {
    const m = alternating;
    const V = m.spec.vocabSize;
    const long = tokenIds(10, 37, 5);
    const short = tokenIds(6, 13, 2);
    const next = [5, 9];
    const pad = long.length - short.length;
    const mask = [...new Array(10).fill(1), ...new Array(pad).fill(0), ...new Array(short.length).fill(1)];
    const row = (r: number) => mask.slice(r * 10, (r + 1) * 10);
    // Hugging Face's positions for a padded batch: cumsum(mask) − 1, with padding set to 1.
    const pos = [0, 1].flatMap((r) => {
      let seen = 0;
      return row(r).map((v) => (v ? seen++ : 1));
    });
    const model = await decoder(m);
    const session = await ort.InferenceSession.create(model);
    const d = m.spec.headDim;
    const empty = (): ort.Tensor =>
      new ort.Tensor('float32', new Float32Array(0), [2, m.spec.numKvHeads, 0, d]);
    const run = twoRowRunner(
      session,
      m.layers.map(() => ({ key: empty(), value: empty() })),
      V,
    );
    const batched = await run([...long, ...new Array(pad).fill(0), ...short], 10, mask, pos);
    const steps = await run(next, 1, [...row(0), 1, ...row(1), 1], [long.length, short.length]);
    const alone = await KvDecoderSession.create(model, info(m));
    for (const [r, ids] of [long, short].entries()) {
      const prefill = await alone.prefill(ids);
      expect(maxRelError(batched[r], prefill.subarray((ids.length - 1) * V))).toBeLessThan(1e-5);
      expect(maxRelError(steps[r], await alone.step(next[r]))).toBeLessThan(1e-5);
    }
    await alone.release();
    await session.release();
  });
});

describe('RoPE tables from the recipe', () => {
  const d = 16;
  it('default frequencies give exactly the θ^(−2i/d) tables', () => {
    const theta = 10000;
    const rope = { theta, invFreq: defaultInvFreq(theta, d), attentionFactor: 1, scaling: 'default' };
    const T = 40;
    const { cos, sin } = ropeTablesIn(Float64Array, T, d, rope, 3);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < d / 2; i++) {
        const a = (t + 3) * Math.pow(theta, (-2 * i) / d);
        expect(cos[t * d + i]).toBe(Math.cos(a));
        expect(cos[t * d + i + d / 2]).toBe(Math.cos(a));
        expect(sin[t * d + i]).toBe(-Math.sin(a));
        expect(sin[t * d + i + d / 2]).toBe(Math.sin(a));
      }
    }
    const f32 = ropeTables(T, d, rope, 3);
    expect(f32.cos).toEqual(Float32Array.from(cos));
  });

  it('scaled frequencies and the attention factor enter the angles and the amplitude', () => {
    const invFreq = Array.from({ length: d / 2 }, (_, i) => 0.5 / (i + 1));
    const { cos, sin } = ropeTablesIn(Float64Array, 5, d, {
      theta: 1,
      invFreq,
      attentionFactor: 1.25,
      scaling: 'yarn',
    });
    expect(cos[4 * d + 3]).toBe(Math.cos(4 * invFreq[3]) * 1.25);
    expect(sin[4 * d + d / 2 + 3]).toBe(Math.sin(4 * invFreq[3]) * 1.25);
  });

  it('refuses a partial rotary dimension, which pairs coordinates differently', () => {
    const rope = { theta: 1e4, invFreq: defaultInvFreq(1e4, 8), attentionFactor: 1, scaling: 'default' };
    expect(() => ropeTables(4, d, rope)).toThrow(/partial rotary/);
  });
});
