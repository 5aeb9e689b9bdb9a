/**
 * What an export's ONNX decoder asks of the runtime that loads it: opset 17 at most (IR version 8), the
 * standard domain only, no float64 anywhere (onnxruntime 1.21, as transformers.js 3 bundles it, has no
 * float64 Cos or Sin), and nothing it cannot run. Also how it behaves at its edges: any empty past width,
 * positions outside the RoPE or position table, and the layout (onnx/, or model.onnx at the root).
 */
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exportPlan } from '../../main/export/export.ts';
import { findOnnxModel, ONNX_DATA, ONNX_DATA_FILE, ONNX_FILE } from '../../main/export/onnx-files.ts';
import { compressToPlan } from '../../main/jobs/compress.ts';
import { openModel } from '../../main/model/model.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import type { ModelSpec } from '../../main/model/types.ts';
import { KV_DECODER_IO, KV_DECODER_OPSET } from '../../main/runtime/graphs/kv-decoder.ts';
import { KvDecoderSession } from '../../main/runtime/kv-session.ts';
import { DataType, modelProtoType } from '../../main/runtime/onnx/proto.ts';
import { maxRelError } from '../helpers/numeric.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { tinyGpt2 } from '../helpers/recipes.ts';

/** The opset and IR version the README promises; raising them is a breaking change for older runtimes. */
const MAX_OPSET = 17;
const MAX_IR_VERSION = 8;

/**
 * Every operator the decoder may use, with the opset that introduced the version of it in effect at
 * opset 17 (the inputs and attributes it is used with).
 */
const ALLOWED_OPS: Record<string, number> = {
  Add: 14,
  And: 7,
  Cast: 13,
  Concat: 13,
  CumSum: 14,
  Gather: 13,
  Gemm: 13,
  Identity: 16,
  LayerNormalization: 17,
  Less: 13,
  LessOrEqual: 16,
  MatMul: 13,
  Max: 13,
  Mul: 14,
  Neg: 13,
  Range: 11,
  Reciprocal: 13,
  ReduceMean: 13,
  Reshape: 14,
  Shape: 15,
  Sigmoid: 13,
  Slice: 13,
  Softmax: 13,
  Split: 13,
  Sqrt: 13,
  Sub: 14,
  Tanh: 13,
  Transpose: 13,
  Unsqueeze: 13,
  Where: 16,
};

interface Attribute {
  name: string;
  i?: number;
  ints?: number[];
  t?: { dataType?: number };
}
interface Node {
  opType: string;
  domain?: string;
  input: string[];
  attribute?: Attribute[];
}
interface ValueInfo {
  name: string;
  type: { tensorType: { elemType: number } };
}
interface Tensor {
  name: string;
  dataType: number;
  dataLocation?: number;
  externalData?: { key: string; value: string }[];
}
interface Model {
  irVersion: number;
  opsetImport: { domain?: string; version: number }[];
  graph: { node: Node[]; initializer: Tensor[]; input: ValueInfo[]; output: ValueInfo[] };
}

function readModel(file: string): Model {
  const type = modelProtoType();
  return type.toObject(type.decode(fs.readFileSync(file)), {
    longs: Number,
    arrays: true,
    defaults: true,
  }) as Model;
}

/** The checks the README's compatibility statement rests on. */
function checkCompatible(model: Model): void {
  expect(model.irVersion).toBeLessThanOrEqual(MAX_IR_VERSION);
  expect(model.opsetImport.length).toBeGreaterThan(0);
  for (const o of model.opsetImport) {
    expect(['', 'ai.onnx']).toContain(o.domain ?? '');
    expect(o.version).toBeLessThanOrEqual(MAX_OPSET);
  }
  const g = model.graph;
  for (const v of [...g.input, ...g.output]) {
    expect([DataType.FLOAT, DataType.INT64], v.name).toContain(v.type.tensorType.elemType);
  }
  for (const t of g.initializer) {
    expect([DataType.FLOAT, DataType.INT64], t.name).toContain(t.dataType);
  }
  const unknown = new Set<string>();
  for (const n of g.node) {
    expect(n.domain ?? '', n.opType).toBe('');
    const since = ALLOWED_OPS[n.opType];
    if (since === undefined) unknown.add(n.opType);
    else expect(since).toBeLessThanOrEqual(MAX_OPSET);
    for (const a of n.attribute ?? []) {
      expect(a.t?.dataType ?? 0, `${n.opType}.${a.name}`).not.toBe(DataType.DOUBLE);
    }
    if (n.opType === 'Cast') {
      const to = n.attribute?.find((a) => a.name === 'to')?.i;
      expect([DataType.FLOAT, DataType.INT64, DataType.BOOL]).toContain(to);
    }
    // before opset 18 ReduceMean takes its axes as an attribute, not as a second input
    if (n.opType === 'ReduceMean') expect(n.input).toHaveLength(1);
  }
  expect([...unknown]).toEqual([]);
}

/** Session options that log only fatal errors: the tests that expect a refusal. */
const QUIET: ort.InferenceSession.SessionOptions = { logSeverityLevel: 4 };

const int64 = (values: number[], dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(values.map((v) => BigInt(v))), dims);

/** One run of `ids` at positions `pos` with empty pasts of width `width(layer, side)`. */
async function runOnce(
  session: ort.InferenceSession,
  spec: ModelSpec,
  ids: number[],
  pos: number[],
  width: (layer: number, side: 'key' | 'value') => number,
): Promise<Float32Array> {
  const IO = KV_DECODER_IO;
  const feeds: Record<string, ort.Tensor> = {
    [IO.inputIds]: int64(ids, [1, ids.length]),
    [IO.attentionMask]: int64(new Array(ids.length).fill(1), [1, ids.length]),
    [IO.positionIds]: int64(pos, [1, pos.length]),
  };
  const empty = (w: number) => new ort.Tensor('float32', new Float32Array(0), [1, spec.numKvHeads, 0, w]);
  for (let i = 0; i < spec.numLayers; i++) {
    feeds[IO.pastKey(i)] = empty(width(i, 'key'));
    feeds[IO.pastValue(i)] = empty(width(i, 'value'));
  }
  return (await session.run(feeds))[IO.logits].data as Float32Array;
}

const tmp = tempDir('rankwise-onnx-compat-');
const STORIES_OUT = path.join(tmp.dir, 'stories');
const GPT2_OUT = path.join(tmp.dir, 'gpt2-out');
const exports = [
  ['stories260K, pre-RoPE keys, external data', STORIES_OUT],
  ['a GPT-2 (LayerNorm, gelu_new, learned positions), folded keys', GPT2_OUT],
] as const;

beforeAll(async () => {
  const stories = await compressToPlan({
    modelDir: STORIES_DIR,
    calib: TINYSTORIES_TEXT,
    eval: TINYSTORIES_TEXT,
    method: 'kqsvd',
    ranks: { k: 4, v: 4 },
    keySpace: 'pre-rope',
    window: 128,
    calibWindows: 4,
    evalWindows: 2,
  });
  // every weight of 1 KiB or more in onnx/model.onnx_data, as a large model's would be
  const r1 = await exportPlan(stories.plan, { out: STORIES_OUT, onnxExternalMinBytes: 1024 });
  expect(r1.export.verification.passed).toBe(true);

  const gpt2 = path.join(tmp.dir, 'gpt2');
  await writeSyntheticModel(gpt2, tinyGpt2(5));
  const text = path.join(tmp.dir, 'excerpt.txt');
  fs.writeFileSync(text, fs.readFileSync(TINYSTORIES_TEXT, 'utf8').slice(0, 30_000));
  const g = await compressToPlan({
    modelDir: gpt2,
    calib: text,
    eval: text,
    method: 'kqsvd',
    ranks: { k: 3, v: 5 },
    window: 64,
    calibWindows: 4,
    evalWindows: 2,
  });
  for (const l of g.plan.layers) expect(l?.keySpace).toBe('folded');
  const r2 = await exportPlan(g.plan, { out: GPT2_OUT });
  expect(r2.export.verification.passed).toBe(true);
});
afterAll(() => tmp.cleanup());

describe('the exported decoder runs on older runtimes', () => {
  it.each(exports)('%s: opset ≤ 17, IR ≤ 8, standard operators, no float64', (_, out) => {
    expect(KV_DECODER_OPSET).toBe(MAX_OPSET);
    checkCompatible(readModel(path.join(out, ONNX_FILE)));
  });

  it('external data lies beside the model in onnx/, recorded relative to it; transformers.js is told', () => {
    const model = readModel(path.join(STORIES_OUT, ONNX_FILE));
    const external = model.graph.initializer.filter((t) => t.dataLocation === 1);
    expect(external.length).toBeGreaterThan(0);
    for (const t of external) {
      expect(t.externalData!.find((e) => e.key === 'location')!.value).toBe(ONNX_DATA);
    }
    expect(fs.statSync(path.join(STORIES_OUT, ONNX_DATA_FILE)).size).toBeGreaterThan(500_000);
    const config = JSON.parse(fs.readFileSync(path.join(STORIES_OUT, 'config.json'), 'utf8'));
    expect(config['transformers.js_config']).toEqual({ use_external_data_format: true });
    const report = JSON.parse(fs.readFileSync(path.join(STORIES_OUT, 'rankwise-report.json'), 'utf8'));
    const names = (report.export.files as { name: string }[]).map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining([ONNX_FILE, ONNX_DATA_FILE]));
    // an export without external data leaves config.json as it was, but for kv_compression
    const plain = JSON.parse(fs.readFileSync(path.join(GPT2_OUT, 'config.json'), 'utf8'));
    expect(plain['transformers.js_config']).toBeUndefined();
  });

  it.each(exports)(
    '%s: an empty past of any width (head_dim, 0 or the rank) gives the same logits',
    async (_, out) => {
      const model = await openModel(out);
      const spec = model.spec;
      await model.close();
      const layers = spec.kvCompression!;
      const session = await ort.InferenceSession.create(path.join(out, ONNX_FILE));
      try {
        const ids = [1, 40, 47, 26, 78];
        const pos = [0, 1, 2, 3, 4];
        const ranks = await runOnce(session, spec, ids, pos, (i, side) =>
          side === 'key' ? layers[i].kRank : layers[i].vRank,
        );
        // transformers.js 3 and Optimum size it from config.json; transformers.js 4 resolves the symbol to 0
        for (const w of [spec.headDim, 0]) {
          expect(maxRelError(await runOnce(session, spec, ids, pos, () => w), ranks)).toBe(0);
        }
      } finally {
        await session.release();
      }
    },
  );

  it('a non-empty past of the wrong width is refused, not misread', async () => {
    const model = await openModel(STORIES_OUT);
    const spec = model.spec;
    await model.close();
    const IO = KV_DECODER_IO;
    // the refusal is the point: keep onnxruntime from logging it as an error
    const session = await ort.InferenceSession.create(path.join(STORIES_OUT, ONNX_FILE), QUIET);
    try {
      const feeds: Record<string, ort.Tensor> = {
        [IO.inputIds]: int64([5], [1, 1]),
        [IO.attentionMask]: int64([1, 1, 1], [1, 3]),
        [IO.positionIds]: int64([2], [1, 1]),
      };
      const H = spec.numKvHeads;
      const d = spec.headDim;
      for (let i = 0; i < spec.numLayers; i++) {
        // two cached tokens at the full head dimension: a cache the 4-wide layers never produce
        feeds[IO.pastKey(i)] = new ort.Tensor('float32', new Float32Array(H * 2 * d), [1, H, 2, d]);
        feeds[IO.pastValue(i)] = new ort.Tensor('float32', new Float32Array(H * 2 * d), [1, H, 2, d]);
      }
      await expect(session.run(feeds)).rejects.toThrow();
    } finally {
      await session.release();
    }
  });

  it.each(exports)('%s: a position outside the table fails instead of wrapping', async (_, out) => {
    const model = await openModel(out);
    const spec = model.spec;
    await model.close();
    const session = await ort.InferenceSession.create(path.join(out, ONNX_FILE), QUIET);
    try {
      const full = () => spec.headDim;
      const last = await runOnce(session, spec, [5], [spec.maxPositions - 1], full);
      expect(last.every(Number.isFinite)).toBe(true);
      for (const p of [spec.maxPositions, -1, -spec.maxPositions]) {
        await expect(runOnce(session, spec, [5], [p], full)).rejects.toThrow(/out of|bounds|range/i);
      }
    } finally {
      await session.release();
    }
  });
});

describe('the layout', () => {
  it('the decoder is found in onnx/, and in an export from before that layout at the root', async () => {
    expect(await findOnnxModel(STORIES_OUT)).toBe(path.join(STORIES_OUT, ONNX_FILE));
    // an earlier export: model.onnx and model.onnx_data beside config.json
    const old = path.join(tmp.dir, 'root-layout');
    fs.cpSync(STORIES_OUT, old, { recursive: true });
    fs.renameSync(path.join(old, ONNX_FILE), path.join(old, 'model.onnx'));
    fs.renameSync(path.join(old, ONNX_DATA_FILE), path.join(old, ONNX_DATA));
    fs.rmdirSync(path.join(old, 'onnx'));
    const found = await findOnnxModel(old);
    expect(found).toBe(path.join(old, 'model.onnx'));
    expect(await findOnnxModel(tmp.dir)).toBeNull();

    const model = await openModel(old);
    const spec = model.spec;
    await model.close();
    const info = { numKvHeads: spec.numKvHeads, vocabSize: spec.vocabSize, layers: spec.kvCompression! };
    const prompt = Int32Array.of(1, 403, 407, 261);
    const moved = await KvDecoderSession.create(found!, info);
    const original = await KvDecoderSession.create(path.join(STORIES_OUT, ONNX_FILE), info);
    try {
      expect(Array.from(await moved.greedy(prompt, 8))).toEqual(Array.from(await original.greedy(prompt, 8)));
    } finally {
      await moved.release();
      await original.release();
    }
  });
});
