/**
 * The export stage (ARCHITECTURE.md §7): write the compressed checkpoint, the ONNX decoder with its thin
 * cache and the report into a marked temporary folder beside `<out>` (publish.ts), verify what was written,
 * then rename it to `<out>`. Nothing reaches `<out>` unless verification passed; a failure or a cancel
 * removes the temporary folder,
 * and an earlier export at `<out>` is replaced only with `force`, only after the new one is complete.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { badInput, badSetting, RankwiseError } from '../core/errors.ts';
import type { CompressionPlan } from './plan.ts';
import { loadWindows } from '../data/windows.ts';
import { CONFIG_FILE, readJsonObject } from '../model/config.ts';
import { modelInfo, originalKvBytesPerToken, kvBytesPerToken } from '../model/info.ts';
import { KV_COMPRESSION_FORMAT, KV_COMPRESSION_KEY, KV_COMPRESSION_VERSION } from '../model/kv-layout.ts';
import { openModel, type ModelHandle } from '../model/model.ts';
import { loadTokenizer } from '../model/tokenizer.ts';
import { Engine, type Device } from '../runtime/engine.ts';
import { throwIfCancelled, type Progress } from '../core/progress.ts';
import { buildKvDecoder } from '../runtime/graphs/kv-decoder.ts';
import { compressedModel, type CompressedModel } from './compressed-model.ts';
import { effectiveCompression } from '../model/fold.ts';
import { memoryTable, type MemoryOptions } from './memory.ts';
import {
  ONNX_DATA,
  ONNX_DATA_FILE,
  ONNX_DIR,
  ONNX_FILE,
  onnxPrecision,
  onnxWeightBytes,
} from './onnx-files.ts';
import { exportedCompressReport } from './exported-layers.ts';
import { renderReportHtml } from './report-html.ts';
import { REPORT_FORMAT, REPORT_VERSION, type ExportedFile, type ReportData } from '../contract/report.ts';
import type { OnnxDtype } from '../contract/api.ts';
import type { KvDecoderPrecision } from '../runtime/graphs/kv-decoder.ts';
import { PARTIAL_MARKER, prepareDestination, publishPartial, removePartial } from './publish.ts';
import { describeFailure, exportedPerplexity, verifyExport } from './verify.ts';
import { writeCompressedCheckpoint } from './write-checkpoint.ts';

export const REPORT_JSON = 'rankwise-report.json';
export const REPORT_HTML = 'rankwise-report.html';

/** Tokenizer and generation files a Hugging Face folder may carry; whichever exist are copied. */
export const COPIED_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'chat_template.jinja',
  'generation_config.json',
];

/** ONNX weights go to an external data file past this size (protobuf cannot exceed 2 GiB). */
const ONNX_EXTERNAL_BYTES = 1 * 2 ** 30;

export interface ExportOptions {
  out: string;
  /** Replace an existing `<out>` (only once the new export has been verified). */
  force?: boolean;
  /** Write onnx/model.onnx (default true). */
  onnx?: boolean;
  /** Its cache and weight type (default `auto`: the checkpoint's 16 bits, or float32; onnx-files.ts). */
  onnxDtype?: OnnxDtype;
  maxShardBytes?: number;
  /**
   * Initializers of at least this many bytes go to onnx/model.onnx_data; default: only when the model is
   * large.
   */
  onnxExternalMinBytes?: number;
  /** Evaluation windows the reloaded checkpoint is checked on (default 2). */
  verifyWindows?: number;
  /** Tokens the ONNX check decodes one at a time after its prefill (default 16). */
  decodeSteps?: number;
  memory?: MemoryOptions;
  device?: Device;
  /** onnxruntime intra-op threads (default: all cores). */
  threads?: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /** Test seam: runs on the partial folder after writing, before verification. */
  beforeVerify?: (partialDir: string) => Promise<void>;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const exists = (p: string) =>
  fs.promises.stat(p).then(
    () => true,
    () => false,
  );

/** Every file under `dir`, named relative to it with `/` (`onnx/model.onnx`), sorted by name. */
async function fileList(dir: string, prefix = ''): Promise<ExportedFile[]> {
  const files: ExportedFile[] = [];
  for (const entry of await fs.promises.readdir(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    const name = `${prefix}${entry.name}`;
    // the temporary folder's marker is removed as the folder is published: not one of the export's files
    if (name === PARTIAL_MARKER) continue;
    if (entry.isDirectory()) files.push(...(await fileList(file, `${name}/`)));
    else if (entry.isFile()) files.push({ name, bytes: (await fs.promises.stat(file)).size });
  }
  return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function weightsBytes(model: ModelHandle): number {
  let total = 0;
  for (const name of model.checkpoint.names()) {
    const info = model.checkpoint.info(name);
    total += info.end - info.begin;
  }
  return total;
}

async function writeConfig(
  source: string,
  partial: string,
  cm: CompressedModel,
  plan: CompressionPlan,
  onnxExternalData: boolean,
  precision: KvDecoderPrecision | null,
) {
  const config = await readJsonObject(path.join(source, CONFIG_FILE));
  const tjsConfig = (extra: Record<string, unknown>) => {
    const tjs = config['transformers.js_config'];
    config['transformers.js_config'] = { ...(tjs !== null && typeof tjs === 'object' ? tjs : {}), ...extra };
  };
  // transformers.js fetches onnx/model.onnx_data only when told to (Node finds it beside the model anyway)
  if (onnxExternalData) tjsConfig({ use_external_data_format: true });
  // transformers.js 3 sizes its first, empty past from this (float32 unless told); 4 reads the model's inputs
  if (precision?.cache === 'float16') tjsConfig({ kv_cache_dtype: 'float16' });
  const c = plan.calibration;
  config[KV_COMPRESSION_KEY] = {
    format: KV_COMPRESSION_FORMAT,
    version: KV_COMPRESSION_VERSION,
    method: plan.method,
    layers: cm.layouts.map((l) => ({
      k_rank: l.kRank,
      v_rank: l.vRank,
      key_space: l.keySpace,
      ...(l.ropePlanes ? { rope_planes: l.ropePlanes } : {}),
    })),
    calibration: {
      source: path.basename(c.source),
      sequences: c.windows,
      seq_len: c.window,
      seed: c.seed,
      sampling: c.sampling,
      sha256: await sha256File(c.source),
    },
  };
  await fs.promises.writeFile(path.join(partial, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * Bytes an export writes at most: the checkpoint as it is (compression only shrinks it) and the decoder
 * (its weights at their stored width; the RoPE tables and the graph are small beside them).
 */
export function predictedExportBytes(
  model: ModelHandle,
  onnx: boolean,
  onnxDtype: OnnxDtype = 'auto',
): number {
  const perWeight = onnxWeightBytes(onnxPrecision(model.spec.dtype, onnxDtype));
  return weightsBytes(model) + (onnx ? perWeight * modelInfo(model).parameters : 0);
}

export async function exportPlan(plan: CompressionPlan, opts: ExportOptions): Promise<ReportData> {
  const started = performance.now();
  const seconds: Record<string, number> = {};
  let t0 = started;
  const lap = (stage: string) => {
    const now = performance.now();
    seconds[stage] = (now - t0) / 1000;
    t0 = now;
  };
  const out = path.resolve(opts.out);
  if (opts.out.trim() === '') throw badSetting('out', 'out is empty: name the folder to export to');
  if ((await exists(out)) && !opts.force) {
    throw badSetting('force', 'already exists; replacing it with the new export needs force', out);
  }
  const model = await openModel(plan.modelDir);
  let partial: string;
  try {
    partial = await prepareDestination(out, predictedExportBytes(model, opts.onnx ?? true, opts.onnxDtype));
  } catch (e) {
    await model.close();
    throw e;
  }
  let engine: Engine;
  try {
    engine = await Engine.create({ device: opts.device ?? 'cpu', threads: opts.threads });
  } catch (e) {
    // an unavailable device must not leave the checkpoint's file handle to the garbage collector
    await removePartial(partial);
    await model.close();
    throw e;
  }
  try {
    if (plan.layers.length !== model.spec.numLayers) {
      throw badInput(
        `the plan has ${plan.layers.length} layers, the model ${model.spec.numLayers}`,
        plan.modelDir,
      );
    }
    const cm = compressedModel(model, plan.layers);
    const spec = cm.spec;
    const signal = opts.signal;
    const report = opts.onProgress;
    const compressed = plan.layers.map((c) => effectiveCompression(model.spec, c) !== null);
    const writeOnnx = opts.onnx ?? true;
    const precision = onnxPrecision(spec.dtype, opts.onnxDtype);
    const onnxBytes = onnxWeightBytes(precision) * modelInfo(model).parameters;
    const onnxMinBytes = opts.onnxExternalMinBytes ?? (onnxBytes > ONNX_EXTERNAL_BYTES ? 1024 : undefined);

    // counted in the model's layers, as the label names them: a count of the compressed ones alone read
    // `layer 5 4/4` when one layer stayed whole; layers left whole are copied, and the last event says N/N
    const layerCount = model.spec.numLayers;
    let layersDone = 0;
    const weightsDone = (layer: number, done: number) =>
      report?.({ stage: 'export weights', layer, done, total: layerCount, etaSeconds: null });
    await writeCompressedCheckpoint(partial, cm, compressed, {
      maxShardBytes: opts.maxShardBytes,
      signal,
      onLayer: (layer) => weightsDone(layer, (layersDone = Math.max(layersDone, layer + 1))),
    });
    if (layersDone < layerCount) weightsDone(-1, layerCount);
    await writeConfig(
      model.dir,
      partial,
      cm,
      plan,
      writeOnnx && onnxMinBytes !== undefined,
      writeOnnx ? precision : null,
    );
    for (const name of COPIED_FILES) {
      const src = path.join(model.dir, name);
      if (await exists(src)) await fs.promises.copyFile(src, path.join(partial, name));
    }
    throwIfCancelled(signal);
    lap('write');
    cm.forgetLayers();

    let onnxFile: string | null = null;
    if (writeOnnx) {
      onnxFile = path.join(partial, ONNX_FILE);
      await fs.promises.mkdir(path.join(partial, ONNX_DIR), { recursive: true });
      const bytes = await buildKvDecoder(
        {
          spec,
          loadEmbeddings: () => cm.loadEmbeddings(),
          loadNarrowLayer: async (i) => {
            throwIfCancelled(signal);
            report?.({
              stage: 'export onnx',
              layer: i,
              done: i + 1,
              total: spec.numLayers,
              etaSeconds: null,
            });
            return cm.loadNarrowLayer(i);
          },
        },
        {
          precision,
          // the data file's location is relative to the model file: both live in onnx/
          ...(onnxMinBytes === undefined
            ? {}
            : {
                externalData: {
                  path: path.join(partial, ONNX_DATA_FILE),
                  location: ONNX_DATA,
                  minBytes: onnxMinBytes,
                },
              }),
        },
      );
      await fs.promises.writeFile(onnxFile, bytes);
      lap('onnx');
    }

    cm.forgetLayers();
    await opts.beforeVerify?.(partial);
    const tokenizer = await loadTokenizer(model.dir);
    const evalWindows = await loadWindows(plan.evalSource, tokenizer, { window: plan.calibration.window });
    const windows = evalWindows.windows.slice(0, opts.verifyWindows ?? 2);
    if (windows.length === 0) throw badInput('no evaluation window to verify the export on', plan.evalSource);
    const verification = await verifyExport(partial, cm, plan, windows, engine, {
      decodeSteps: opts.decodeSteps ?? 16,
      onnxFile,
      onnxPrecision: precision,
      onProgress: report,
      signal,
    });
    if (!verification.passed) throw new RankwiseError('internal', describeFailure(verification, out));
    // The job measured its model in memory, before folding and rounding to the checkpoint's dtype, and with
    // the ranks it allocated, which an export may override: the files' own figure is what is reported.
    const job = plan.report;
    const evalCount = Math.min(job.evalWindows, evalWindows.windows.length);
    const evaluation = {
      windows: evalCount,
      window: plan.calibration.window,
      perplexity: await exportedPerplexity(partial, evalWindows.windows.slice(0, evalCount), engine, {
        onProgress: report,
        signal,
      }),
      inMemory: job.perplexity.compressed,
    };
    lap('verify');

    // the report describes the files beside it, not itself
    const files = await fileList(partial);
    const written = files.filter((f) => f.name.endsWith('.safetensors')).reduce((a, f) => a + f.bytes, 0);
    seconds.total = (performance.now() - started) / 1000;
    const kv = { original: originalKvBytesPerToken(spec), compressed: kvBytesPerToken(spec) };
    const data: ReportData = {
      format: REPORT_FORMAT,
      version: REPORT_VERSION,
      created: new Date().toISOString(),
      model: { dir: model.dir, info: modelInfo(model) },
      // the layouts are what writeConfig put in config.json, so the report and the files cannot disagree
      compress: exportedCompressReport(job, cm.layouts, {
        kvBytesPerToken: kv,
        perplexity: evaluation.perplexity,
      }),
      memory: memoryTable(
        { kvBytesPerToken: kv, weightsBytes: { original: weightsBytes(model), compressed: written } },
        opts.memory,
      ),
      export: { dir: out, files, seconds, verification, evaluation },
    };
    await fs.promises.writeFile(path.join(partial, REPORT_JSON), `${JSON.stringify(data, null, 2)}\n`);
    await fs.promises.writeFile(path.join(partial, REPORT_HTML), renderReportHtml(data));
    throwIfCancelled(signal);
    await publishPartial(partial, out);
    return data;
  } catch (e) {
    await removePartial(partial);
    throw e;
  } finally {
    await engine.release();
    await model.close();
  }
}
