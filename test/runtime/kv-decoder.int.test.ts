import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { narrowLayer } from '../../main/model/fold.ts';
import type { FactorPair, KeySpace, LayerCompression } from '../../main/core/kv.ts';
import { openModel, type ModelHandle } from '../../main/model/model.ts';
import { mulberry32 } from '../../main/model/prng.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import type { ModelSpec } from '../../main/model/types.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { forwardSequences } from '../../main/runtime/forward.ts';
import { greedyDecode } from '../../main/runtime/generate.ts';
import { buildKvDecoder, type KvDecoderSource } from '../../main/runtime/graphs/kv-decoder.ts';
import { KvDecoderSession, type KvSessionInfo } from '../../main/runtime/kv-session.ts';
import { ModelRunner, withCompression } from '../../main/runtime/runner.ts';
import { maxRelError } from '../helpers/numeric.ts';
import { ortGreedy } from '../helpers/ort-greedy.ts';
import { STORIES_DIR, tempDir } from '../helpers/paths.ts';
import { tinyGpt2, tinyLlama } from '../helpers/recipes.ts';
import { twoRowRunner } from '../helpers/ort-batch.ts';

type ModelName = 'llama' | 'gpt2' | 'stories';

/** Per layer: [key rank, value rank] (null leaves that side whole), or null for an untouched layer. */
type LayerPlan = [number | null, number | null] | null;

interface Case {
  model: ModelName;
  keySpace: KeySpace | null;
  plan: LayerPlan[];
}

// Every key space each model allows, with ranks that differ between layers and sides.
const CASES: Case[] = [
  { model: 'llama', keySpace: null, plan: [] },
  {
    model: 'llama',
    keySpace: 'pre-rope',
    plan: [
      [4, 3],
      [2, null],
    ],
  },
  {
    model: 'llama',
    keySpace: 'post-rope',
    plan: [
      [null, 5],
      [4, 3],
    ],
  },
  { model: 'gpt2', keySpace: null, plan: [] },
  {
    model: 'gpt2',
    keySpace: 'folded',
    plan: [
      [4, 3],
      [2, 6],
    ],
  },
  { model: 'stories', keySpace: null, plan: [] },
  { model: 'stories', keySpace: 'pre-rope', plan: [[4, 3], [2, null], null, [null, 5], [6, 2]] },
  { model: 'stories', keySpace: 'post-rope', plan: [[4, 3], null, [2, 6], [null, 5], [6, null]] },
];
const label = (c: Case) => `${c.model} ${c.keySpace ?? 'uncompressed'}`;

const tmp = tempDir('rankwise-kv-decoder-');
const models = {} as Record<ModelName, ModelHandle>;
let engine: Engine;

beforeAll(async () => {
  engine = await Engine.create({ device: 'cpu' });
  await writeSyntheticModel(path.join(tmp.dir, 'llama'), tinyLlama(21));
  await writeSyntheticModel(path.join(tmp.dir, 'gpt2'), tinyGpt2(22));
  models.llama = await openModel(path.join(tmp.dir, 'llama'));
  models.gpt2 = await openModel(path.join(tmp.dir, 'gpt2'));
  models.stories = await openModel(STORIES_DIR);
});
afterAll(async () => {
  await engine.release();
  for (const m of Object.values(models)) await m.close();
  tmp.cleanup();
});

/** Independent random d×r factors: A·Bᵀ is no projector, so every product of the decoder is exercised. */
function randomPairs(heads: number, d: number, r: number, rng: () => number): FactorPair[] {
  const m = () => Float64Array.from({ length: d * r }, () => rng() - 0.5);
  return Array.from({ length: heads }, () => ({ a: m(), b: m(), rank: r }));
}

function compressions(spec: ModelSpec, c: Case): (LayerCompression | null)[] {
  const rng = mulberry32(1234);
  const d = spec.headDim;
  return Array.from({ length: spec.numLayers }, (_, i) => {
    const p = c.plan[i];
    if (!c.keySpace || !p) return null;
    const [kRank, vRank] = p;
    return {
      keySpace: c.keySpace,
      kRank: kRank ?? d,
      vRank: vRank ?? d,
      keys: kRank ? randomPairs(spec.numKvHeads, d, kRank, rng) : null,
      values: vRank ? randomPairs(spec.numKvHeads, d, vRank, rng) : null,
    };
  });
}

/** The cache widths each layer must have, from the plan alone. */
function sessionInfo(spec: ModelSpec, layers: (LayerCompression | null)[]): KvSessionInfo {
  const d = spec.headDim;
  return {
    numKvHeads: spec.numKvHeads,
    vocabSize: spec.vocabSize,
    layers: layers.map((c) => ({ kRank: c?.keys ? c.kRank : d, vRank: c?.values ? c.vRank : d })),
  };
}

interface Exported {
  modelPath: string;
  spec: ModelSpec;
  layers: (LayerCompression | null)[];
  info: KvSessionInfo;
  runner: ModelRunner;
}

function decoderSource(model: ModelHandle, layers: (LayerCompression | null)[]): KvDecoderSource {
  return {
    spec: model.spec,
    loadEmbeddings: () => model.loadEmbeddings(),
    loadNarrowLayer: async (i) => narrowLayer(model.spec, await model.loadLayer(i), layers[i]),
  };
}

const exported = new Map<string, Promise<Exported>>();
function exportCase(c: Case): Promise<Exported> {
  let e = exported.get(label(c));
  if (!e) {
    e = (async () => {
      const model = models[c.model];
      const layers = compressions(model.spec, c);
      const dir = path.join(tmp.dir, label(c).replace(' ', '-'));
      fs.mkdirSync(dir);
      const modelPath = path.join(dir, 'model.onnx');
      fs.writeFileSync(modelPath, await buildKvDecoder(decoderSource(model, layers)));
      const runner = new ModelRunner(engine, withCompression(model, layers));
      return { modelPath, spec: model.spec, layers, info: sessionInfo(model.spec, layers), runner };
    })();
    exported.set(label(c), e);
  }
  return e;
}

function tokens(spec: ModelSpec, n: number, seed: number): Int32Array {
  const rng = mulberry32(seed);
  return Int32Array.from({ length: n }, () => Math.floor(rng() * spec.vocabSize));
}

const STORIES_PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426];
const sequence = (c: Case, spec: ModelSpec, n: number) =>
  c.model === 'stories' ? Int32Array.from(STORIES_PROMPT.slice(0, n)) : tokens(spec, n, 99);

const emptyCache = (batch: number, info: KvSessionInfo): { key: ort.Tensor; value: ort.Tensor }[] =>
  info.layers.map((l) => ({
    key: new ort.Tensor('float32', new Float32Array(0), [batch, info.numKvHeads, 0, l.kRank]),
    value: new ort.Tensor('float32', new Float32Array(0), [batch, info.numKvHeads, 0, l.vRank]),
  }));

/** Prefill of `prompt` tokens, then one token at a time: the logits of every position, [T, V]. */
async function cachedLogits(session: KvDecoderSession, ids: Int32Array, prompt: number, V: number) {
  const got = new Float32Array(ids.length * V);
  got.set(await session.prefill(ids.subarray(0, prompt)));
  for (let t = prompt; t < ids.length; t++) got.set(await session.step(ids[t]), t * V);
  return got;
}

describe('exported KV-cache decoder', () => {
  it.each(CASES.map((c) => [label(c), c] as const))(
    '%s: prefill + cached decoding equals the in-memory model; the cache has the planned widths',
    async (_, c) => {
      const e = await exportCase(c);
      const V = e.spec.vocabSize;
      const T = 16;
      const ids = sequence(c, e.spec, T);
      const session = await KvDecoderSession.create(e.modelPath, e.info);
      const got = await cachedLogits(session, ids, 7, V);
      const ref = (await forwardSequences(e.runner, [ids], { logits: 'all' })).logits![0];
      expect(maxRelError(got, ref)).toBeLessThan(1e-4);

      const Hkv = e.spec.numKvHeads;
      let perToken = 0;
      session.cache().forEach((layer, i) => {
        const { kRank, vRank } = e.info.layers[i];
        expect(layer.key.dims).toEqual([1, Hkv, T, kRank]);
        expect(layer.value.dims).toEqual([1, Hkv, T, vRank]);
        perToken += Hkv * (kRank + vRank);
      });
      if (c.keySpace) expect(perToken).toBeLessThan(2 * e.spec.numLayers * Hkv * e.spec.headDim);
      expect(session.presentBytes()).toBe(T * perToken * 4);
      await session.release();
    },
  );

  it.each(CASES.map((c) => [label(c), c] as const))(
    '%s: a left-padded batch of two gives each row the logits it has alone',
    async (_, c) => {
      const e = await exportCase(c);
      const V = e.spec.vocabSize;
      const long = sequence(c, e.spec, 10);
      const short = tokens(e.spec, 6, 7);
      const next = [5, 9];
      const pad = long.length - short.length;
      const mask = [...new Array(10).fill(1), ...new Array(pad).fill(0), ...new Array(short.length).fill(1)];
      const row = (r: number) => mask.slice(r * 10, (r + 1) * 10);
      // Hugging Face's positions for a padded batch: cumsum(mask) − 1, with padding set to 1.
      const pos = [0, 1].flatMap((r) => {
        let seen = 0;
        return row(r).map((m) => (m ? seen++ : 1));
      });
      const session = await ort.InferenceSession.create(e.modelPath);
      const run = twoRowRunner(session, emptyCache(2, e.info), V);
      const batched = await run([...long, ...new Array(pad).fill(0), ...short], 10, mask, pos);
      const steps = await run(next, 1, [...row(0), 1, ...row(1), 1], [long.length, short.length]);

      const alone = await KvDecoderSession.create(e.modelPath, e.info);
      for (const [r, ids] of [long, short].entries()) {
        const prefill = await alone.prefill(ids);
        expect(maxRelError(batched[r], prefill.subarray((ids.length - 1) * V))).toBeLessThan(1e-5);
        expect(maxRelError(steps[r], await alone.step(next[r]))).toBeLessThan(1e-5);
      }
      await alone.release();
      await session.release();
    },
  );

  it.each(CASES.filter((c) => c.model === 'stories').map((c) => [label(c), c] as const))(
    '%s: 64 greedy tokens through onnxruntime with the cache equal greedyDecode of the in-memory model',
    async (_, c) => {
      const e = await exportCase(c);
      const prompt = Int32Array.from(STORIES_PROMPT.slice(0, 5));
      const got = (await ortGreedy(e.modelPath, prompt, 64)).ids;
      const want = await greedyDecode(e.runner, prompt, { steps: 64 });
      expect(got.length).toBe(prompt.length + 64);
      expect(got).toEqual(Array.from(want));
      const session = await KvDecoderSession.create(e.modelPath, e.info);
      expect(Array.from(await session.greedy(prompt, 64))).toEqual(Array.from(want));
      await session.release();
    },
  );

  it('writes the weights to an external data file that a session opened from the path reads', async () => {
    const c = CASES.find((x) => x.model === 'stories' && x.keySpace === 'pre-rope')!;
    const inline = await exportCase(c);
    const model = models.stories;
    const dir = path.join(tmp.dir, 'external');
    fs.mkdirSync(dir);
    const dataPath = path.join(dir, 'model.onnx.data');
    let weightBytes = 0;
    const seen = new Set<Float32Array>();
    const count = (...arrays: (Float32Array | undefined)[]) => {
      for (const a of arrays) {
        if (!a || seen.has(a)) continue;
        seen.add(a);
        weightBytes += a.byteLength;
      }
    };
    const base = decoderSource(model, inline.layers);
    const source: KvDecoderSource = {
      spec: base.spec,
      loadEmbeddings: async () => {
        const emb = await base.loadEmbeddings();
        count(emb.tokens, emb.lmHead, emb.positions, emb.finalNorm.weight, emb.finalNorm.bias);
        return emb;
      },
      loadNarrowLayer: async (i) => {
        const l = await base.loadNarrowLayer(i);
        const w = l.weights;
        for (const lin of [w.q, w.k, w.v, w.o, w.gate, w.up, w.down]) count(lin?.weight, lin?.bias);
        count(w.attnNorm.weight, w.attnNorm.bias, w.mlpNorm.weight, w.mlpNorm.bias, l.kBasis, l.qBasis);
        return l;
      },
    };
    const bytes = await buildKvDecoder(source, {
      externalData: { path: dataPath, location: 'model.onnx.data', minBytes: 0 },
    });
    const modelPath = path.join(dir, 'model.onnx');
    fs.writeFileSync(modelPath, bytes);
    const dataBytes = fs.statSync(dataPath).size;
    expect(dataBytes).toBeGreaterThanOrEqual(weightBytes);
    expect(bytes.byteLength).toBeLessThan(weightBytes / 20);
    expect(fs.statSync(inline.modelPath).size).toBeGreaterThan(weightBytes);

    const ids = sequence(c, model.spec, 16);
    const V = model.spec.vocabSize;
    const external = await KvDecoderSession.create(modelPath, inline.info);
    const reference = await KvDecoderSession.create(inline.modelPath, inline.info);
    const got = await cachedLogits(external, ids, 7, V);
    expect(maxRelError(got, await cachedLogits(reference, ids, 7, V))).toBeLessThan(1e-6);
    expect(external.presentBytes()).toBe(reference.presentBytes());
    await external.release();
    await reference.release();
  });
});
