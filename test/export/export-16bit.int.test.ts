/**
 * A 16-bit checkpoint exports in its own precision (issue 15, item 4), so the saving is real: the ONNX
 * decoder's cache is float16 (BF16 too: onnxruntime-node passes no bfloat16 tensors) and its weights are
 * stored as the checkpoint stores them, so the file is about the checkpoint's size; the cache measured by
 * running the decoder is half the original model's at its own dtype at half the ranks; its logits stay
 * within the float16 tolerance; and the perplexity the report calls compressed is the exported files' own,
 * the figure `rankwise eval` gives for the folder. Float32 checkpoints export as before.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { evaluate } from '../../main/cli/commands/eval.ts';
import type { ReportData } from '../../main/contract/report.ts';
import { exportPlan, REPORT_JSON } from '../../main/export/export.ts';
import { ONNX_FILE } from '../../main/export/onnx-files.ts';
import { writePlanFile } from '../../main/export/plan-file.ts';
import { ONNX_TOLERANCE, VERIFY_TOLERANCE } from '../../main/export/verify.ts';
import { compressToPlan, type CompressionPlan } from '../../main/jobs/compress.ts';
import { Checkpoint } from '../../main/model/checkpoint.ts';
import { writeSyntheticModel, type SyntheticRecipe } from '../../main/model/synthetic.ts';
import {
  KV_DECODER_IO,
  KV_DECODER_IR_VERSION,
  KV_DECODER_OPSET,
} from '../../main/runtime/graphs/kv-decoder.ts';
import { DataType, modelProtoType } from '../../main/runtime/onnx/proto.ts';
import { runCli } from '../helpers/cli.ts';
import { ortGreedy } from '../helpers/ort-greedy.ts';
import { TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { tinyGpt2, tinyLlama } from '../helpers/recipes.ts';

interface Tensor {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}
interface Model {
  irVersion: number;
  opsetImport: { version: number }[];
  graph: {
    node: { opType: string; input: string[]; attribute?: { name: string; i?: number }[] }[];
    initializer: Tensor[];
    input: { name: string; type: { tensorType: { elemType: number } } }[];
    output: { name: string; type: { tensorType: { elemType: number } } }[];
  };
}

function readModel(dir: string): Model {
  const type = modelProtoType();
  return type.toObject(type.decode(fs.readFileSync(path.join(dir, ONNX_FILE))), {
    longs: Number,
    arrays: true,
    defaults: true,
  }) as Model;
}

const tmp = tempDir('rankwise-export-16bit-');
const at = (name: string) => path.join(tmp.dir, name);
const TEXT = () => at('excerpt.txt');

interface Case {
  recipe: SyntheticRecipe;
  /** Half of every head: the cache at half the original's elements. */
  ranks: { k: number; v: number };
}
/** Big enough that weights, not the graph, make up the file; head dimension 32 (Llama) or 8 (GPT-2). */
const CASES = {
  bf16: {
    recipe: tinyLlama(61, { dtype: 'BF16', hiddenSize: 128, intermediateSize: 256 }),
    ranks: { k: 16, v: 16 },
  },
  f16: { recipe: tinyGpt2(62, { dtype: 'F16' }), ranks: { k: 4, v: 4 } },
  f32: { recipe: tinyLlama(63, { hiddenSize: 128, intermediateSize: 256 }), ranks: { k: 16, v: 16 } },
} satisfies Record<string, Case>;
type Name = keyof typeof CASES;

const plans = new Map<Name, CompressionPlan>();
const jobPerplexity = new Map<Name, number>();
const reports = new Map<string, ReportData>();

async function exported(name: Name, onnxDtype: 'auto' | 'float32' | 'float16' = 'auto') {
  const key = `${name}-${onnxDtype}`;
  if (!reports.has(key)) {
    const r = await exportPlan(plans.get(name)!, { out: at(key), onnxDtype, decodeSteps: 8 });
    reports.set(key, r);
  }
  return { dir: at(key), report: reports.get(key)! };
}

beforeAll(async () => {
  fs.writeFileSync(TEXT(), fs.readFileSync(TINYSTORIES_TEXT, 'utf8').slice(0, 40_000));
  for (const [name, c] of Object.entries(CASES) as [Name, Case][]) {
    await writeSyntheticModel(at(name), c.recipe);
    const { plan, report } = await compressToPlan({
      modelDir: at(name),
      calib: TEXT(),
      eval: TEXT(),
      method: 'ksvd',
      ranks: c.ranks,
      window: 64,
      calibWindows: 6,
      evalWindows: 3,
    });
    plans.set(name, plan);
    jobPerplexity.set(name, report.perplexity.compressed);
  }
}, 120_000);
afterAll(() => tmp.cleanup());

const elemType = (m: Model, name: string) =>
  [...m.graph.input, ...m.graph.output].find((v) => v.name === name)!.type.tensorType.elemType;

describe('a BF16 checkpoint exports a 16-bit decoder', () => {
  it('float16 cache, bfloat16 weights bit for bit the checkpoint’s, computed in float32; the report says so', async () => {
    const { dir, report } = await exported('bf16');
    const v = report.export.verification;
    expect(v.passed).toBe(true);
    expect(v.onnx).toMatchObject({ cacheDtype: 'float16', weightsDtype: 'bfloat16' });

    const m = readModel(dir);
    expect(m.irVersion).toBeLessThanOrEqual(KV_DECODER_IR_VERSION);
    for (const o of m.opsetImport) expect(o.version).toBeLessThanOrEqual(KV_DECODER_OPSET);
    const IO = KV_DECODER_IO;
    for (const n of [IO.inputIds, IO.attentionMask, IO.positionIds])
      expect(elemType(m, n)).toBe(DataType.INT64);
    expect(elemType(m, IO.logits)).toBe(DataType.FLOAT);
    for (let i = 0; i < 2; i++) {
      for (const n of [IO.pastKey(i), IO.pastValue(i), IO.presentKey(i), IO.presentValue(i)]) {
        expect(elemType(m, n), n).toBe(DataType.FLOAT16);
      }
    }
    // every stored weight is bfloat16 and widened by a Cast; float32 is left to computed tables and constants
    const casts = new Map(m.graph.node.filter((n) => n.opType === 'Cast').map((n) => [n.input[0], n]));
    const stored = m.graph.initializer.filter(
      (t) => t.name.startsWith('model.') && !t.name.includes('rotary_emb'),
    );
    expect(stored.length).toBeGreaterThan(10);
    for (const t of stored) {
      expect(t.dataType, t.name).toBe(DataType.BFLOAT16);
      expect(casts.get(t.name)?.attribute?.find((a) => a.name === 'to')?.i, t.name).toBe(DataType.FLOAT);
    }
    for (const t of m.graph.initializer) {
      expect([DataType.FLOAT, DataType.BFLOAT16, DataType.INT64], t.name).toContain(t.dataType);
    }
    for (const n of casts.values()) {
      const to = n.attribute?.find((a) => a.name === 'to')?.i;
      expect([DataType.FLOAT, DataType.FLOAT16, DataType.INT64, DataType.BOOL]).toContain(to);
    }

    // the same bytes as the exported checkpoint: unchanged, folded (v_proj) and narrowed (k_proj) tensors
    const ckpt = await Checkpoint.open(dir);
    try {
      const names = [
        'model.embed_tokens.weight',
        'model.layers.0.mlp.up_proj.weight',
        'model.layers.1.self_attn.v_proj.weight',
        'model.layers.1.self_attn.k_proj.weight',
        'model.layers.1.self_attn.o_proj.weight',
      ];
      for (const name of names) {
        const t = stored.find((s) => s.name === name)!;
        expect(ckpt.info(name).dtype).toBe('BF16');
        expect(Buffer.from(t.rawData).equals(Buffer.from(await ckpt.readBytes(name))), name).toBe(true);
      }
    } finally {
      await ckpt.close();
    }
  });

  it('the ONNX file is about the checkpoint’s size; a float32 export of the same model twice that', async () => {
    const size = (r: ReportData, name: string) => r.export.files.find((f) => f.name === name)!.bytes;
    const half = (await exported('bf16')).report;
    const full = (await exported('bf16', 'float32')).report;
    const weights = size(half, 'model.safetensors');
    expect(size(half, ONNX_FILE) / weights).toBeGreaterThan(0.95);
    expect(size(half, ONNX_FILE) / weights).toBeLessThan(1.1);
    expect(size(full, ONNX_FILE) / size(half, ONNX_FILE)).toBeGreaterThan(1.9);
    expect(full.export.verification.onnx).toMatchObject({ cacheDtype: 'float32', weightsDtype: 'float32' });
  });

  it('at half the ranks the cache measured in onnxruntime is half the original BF16 model’s per token', async () => {
    const spec = { layers: 2, kvHeads: 2, headDim: 32 };
    const originalBf16 = 2 * 2 * spec.layers * spec.kvHeads * spec.headDim;
    const { dir, report } = await exported('bf16');
    const c = report.export.verification.onnx!.cacheBytesPerToken;
    expect(c.original).toBe(originalBf16);
    expect(c.measured).toBe(originalBf16 / 2);
    expect(report.memory.kvBytesPerToken).toEqual({ original: originalBf16, compressed: originalBf16 / 2 });

    // measured again by a plain onnxruntime client: the present outputs' bytes over the tokens they hold
    const steps = 12;
    const got = await ortGreedy(path.join(dir, ONNX_FILE), [1, 40, 47, 26, 78], steps);
    expect(got.cacheBytes / (5 + steps - 1)).toBe(originalBf16 / 2);

    // the float32 decoder the export used to write holds as much per token as the uncompressed BF16 model
    const full = (await exported('bf16', 'float32')).report.export.verification.onnx!.cacheBytesPerToken;
    expect(full).toEqual({ measured: originalBf16, original: originalBf16 });
  });

  it('logits within the float16 tolerance of the in-memory model; the reloaded checkpoint exactly', async () => {
    const v = (await exported('bf16')).report.export.verification;
    expect(v.onnx!.tolerance).toBe(ONNX_TOLERANCE.float16);
    expect(v.tolerance).toBe(VERIFY_TOLERANCE);
    expect(v.onnxRelError).toBeLessThan(ONNX_TOLERANCE.float16);
    // the cache really is rounded: a float16 decoder does not reproduce float32 to the last bit
    expect(v.onnxRelError).toBeGreaterThan(0);
    expect(v.checkpointRelError).toBeLessThan(VERIFY_TOLERANCE);
    const f32 = (await exported('bf16', 'float32')).report.export.verification;
    expect(f32.onnx!.tolerance).toBe(VERIFY_TOLERANCE);
    expect(f32.onnxRelError).toBeLessThan(VERIFY_TOLERANCE);
  });

  it('the compressed perplexity reported is the exported files’ own: `rankwise eval` of the folder', async () => {
    const { dir, report } = await exported('bf16');
    const ev = report.export.evaluation!;
    expect(ev).toMatchObject({ windows: 3, window: 64, inMemory: jobPerplexity.get('bf16') });
    expect(report.compress.perplexity.compressed).toBe(ev.perplexity);
    const onDisk = JSON.parse(fs.readFileSync(path.join(dir, REPORT_JSON), 'utf8')) as ReportData;
    expect(onDisk.compress.perplexity.compressed).toBe(ev.perplexity);

    const e = await evaluate({
      modelDir: dir,
      data: TEXT(),
      window: 64,
      maxWindows: 3,
      device: 'cpu',
      progress: false,
    });
    expect(e.windows).toBe(3);
    expect(Math.abs(e.perplexity / report.compress.perplexity.compressed - 1)).toBeLessThan(1e-6);
    // the job's figure is of its float32 model before the folded weights were rounded to BF16
    expect(Math.abs(ev.inMemory / ev.perplexity - 1)).toBeGreaterThan(1e-7);
  });

  it('transformers.js 3 is told the cache type in config.json (4 reads it from the model)', async () => {
    const config = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
    expect(config((await exported('bf16')).dir)['transformers.js_config']).toEqual({
      kv_cache_dtype: 'float16',
    });
    expect(config((await exported('bf16', 'float32')).dir)['transformers.js_config']).toBeUndefined();
  });
});

describe('other checkpoint dtypes', () => {
  it('F16 (GPT-2): float16 weights and cache; half the original F16 cache per token', async () => {
    const { dir, report } = await exported('f16');
    const v = report.export.verification;
    expect(v.passed).toBe(true);
    expect(v.onnx).toMatchObject({ cacheDtype: 'float16', weightsDtype: 'float16' });
    // 2 layers × 4 KV heads × head dim 8, keys and values, 2 bytes
    expect(v.onnx!.cacheBytesPerToken).toEqual({ measured: 256 / 2, original: 256 });
    const m = readModel(dir);
    expect(m.graph.initializer.find((t) => t.name === 'model.embed_tokens.weight')?.dataType).toBe(
      DataType.FLOAT16,
    );
    expect(elemType(m, KV_DECODER_IO.presentValue(1))).toBe(DataType.FLOAT16);
  });

  it('F32 exports as before, all float32; asked for float16 it stores and caches in 16 bits', async () => {
    const { dir, report } = await exported('f32');
    const v = report.export.verification;
    expect(v.onnx).toMatchObject({
      cacheDtype: 'float32',
      weightsDtype: 'float32',
      tolerance: VERIFY_TOLERANCE,
    });
    const m = readModel(dir);
    for (const t of m.graph.initializer) expect([DataType.FLOAT, DataType.INT64]).toContain(t.dataType);
    expect(elemType(m, KV_DECODER_IO.pastKey(0))).toBe(DataType.FLOAT);
    const original = 4 * 2 * 2 * 2 * 32;
    expect(v.onnx!.cacheBytesPerToken).toEqual({ measured: original / 2, original });

    const half = (await exported('f32', 'float16')).report.export.verification;
    expect(half.passed).toBe(true);
    expect(half.onnx).toMatchObject({ cacheDtype: 'float16', weightsDtype: 'float16' });
    expect(half.onnx!.cacheBytesPerToken).toEqual({ measured: original / 4, original });
  });

  it('`rankwise export --onnx-dtype` chooses, and refuses a type it does not know before any work', async () => {
    const plan = at('f16.plan');
    await writePlanFile(plan, plans.get('f16')!);
    const bad = await runCli(['export', plan, '--out', at('cli-bad'), '--onnx-dtype', 'bfloat16']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--onnx-dtype must be one of auto, float32, float16/);
    expect(fs.existsSync(at('cli-bad'))).toBe(false);
    const r = await runCli([
      'export',
      plan,
      '--out',
      at('cli-f32'),
      '--onnx-dtype',
      'float32',
      '--json',
      '-q',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).verification.onnx).toMatchObject({ cacheDtype: 'float32' });
  });
});
