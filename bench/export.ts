/**
 * The export stage on stories260K and on the synthetic ~125M model: seconds per stage of `exportPlan` and
 * the files' bytes, then ONNX decode tokens/s of the exported decoder (thin KV cache) against the same
 * decoder built over the uncompressed model, and the cache bytes both hold. Rows for bench/run.ts.
 *
 * Each model is compressed with kqsvd at fixed ranks (keys and values at half the head dimension, a few
 * calibration windows so the compress step stays quick), once per key space, since the key space decides
 * what a decode step computes: pre-RoPE latents are expanded and rotated again at every step, post-RoPE
 * latents are scored against projected queries directly.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportPlan } from '../main/export/export.ts';
import { ONNX_FILE } from '../main/export/onnx-files.ts';
import { compressedModel } from '../main/export/compressed-model.ts';
import { compressToPlan } from '../main/jobs/compress.ts';
import { loadWindows } from '../main/data/windows.ts';
import { kvElementsPerToken, type KvLayerLayout } from '../main/model/kv-layout.ts';
import { openModel } from '../main/model/model.ts';
import { loadTokenizer } from '../main/model/tokenizer.ts';
import { buildKvDecoder } from '../main/runtime/graphs/kv-decoder.ts';
import { KvDecoderSession } from '../main/runtime/kv-session.ts';
import type { KeySpace } from '../main/core/kv.ts';
import type { ModelSpec } from '../main/model/types.ts';

type Say = (k: string, v: string) => void;

/** Tokens decoded one at a time after the prefill; only these steps are timed. */
export const DECODE_STEPS = 32;
const KEY_SPACES: readonly KeySpace[] = ['pre-rope', 'post-rope'];

const size = (bytes: number) =>
  bytes < 2 ** 20 ? `${bytes.toLocaleString('en-US')} B` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const n = (x: number) => x.toLocaleString('en-US');
const secs = (s: number | undefined) => (s === undefined ? '–' : s.toFixed(1));

interface Decoder {
  path: string;
  layers: readonly KvLayerLayout[];
}

interface DecodeFigures {
  context: number;
  tokensPerSecond: { thin: number; full: number };
  /** presentBytes() after the last step, and cache elements per token as the layout gives them. */
  bytes: { thin: number; full: number };
  elementsPerToken: { thin: number; full: number };
}

/**
 * Prefills both decoders with the first `context − DECODE_STEPS` tokens, then decodes the remaining
 * tokens one at a time, alternating thin and full step by step so the machine's noise falls on both alike.
 */
async function decodeBoth(
  spec: ModelSpec,
  thin: Decoder,
  full: Decoder,
  ids: Int32Array,
  contexts: number[],
): Promise<DecodeFigures[]> {
  const open = (d: Decoder) =>
    KvDecoderSession.create(d.path, {
      numKvHeads: spec.numKvHeads,
      vocabSize: spec.vocabSize,
      layers: d.layers,
    });
  const sessions = { thin: await open(thin), full: await open(full) };
  const rows: DecodeFigures[] = [];
  try {
    for (const context of contexts) {
      const prefill = context - DECODE_STEPS;
      const seconds = { thin: 0, full: 0 };
      await sessions.thin.prefill(ids.subarray(0, prefill));
      await sessions.full.prefill(ids.subarray(0, prefill));
      for (let t = prefill; t < context; t++) {
        for (const which of ['thin', 'full'] as const) {
          const t0 = performance.now();
          await sessions[which].step(ids[t]);
          seconds[which] += (performance.now() - t0) / 1000;
        }
      }
      rows.push({
        context,
        tokensPerSecond: { thin: DECODE_STEPS / seconds.thin, full: DECODE_STEPS / seconds.full },
        bytes: { thin: sessions.thin.presentBytes(), full: sessions.full.presentBytes() },
        elementsPerToken: {
          thin: kvElementsPerToken(thin.layers, spec),
          full: kvElementsPerToken(full.layers, spec),
        },
      });
    }
  } finally {
    await sessions.thin.release();
    await sessions.full.release();
  }
  return rows;
}

/** The uncompressed model as the same ONNX decoder: every layer null leaves the model as it was. */
async function writeFullDecoder(modelDir: string, out: string): Promise<Decoder> {
  const model = await openModel(modelDir);
  try {
    const cm = compressedModel(model, new Array<null>(model.spec.numLayers).fill(null));
    const bytes = await buildKvDecoder({
      spec: cm.spec,
      loadEmbeddings: () => cm.loadEmbeddings(),
      loadNarrowLayer: (i) => cm.loadNarrowLayer(i),
    });
    await fs.promises.writeFile(out, bytes);
    return { path: out, layers: cm.layouts };
  } finally {
    await model.close();
  }
}

async function benchModel(label: string, modelDir: string, text: string, tmp: string, say: Say) {
  const model = await openModel(modelDir);
  const spec = model.spec;
  const tokenizer = await loadTokenizer(model.dir);
  await model.close();
  const d = spec.headDim;
  const window = Math.min(512, spec.maxPositions);
  const contexts = [...new Set([Math.min(512, spec.maxPositions), spec.maxPositions])];
  const ids = (await loadWindows(text, tokenizer, { window: spec.maxPositions, count: 1 })).windows[0];

  const fullPath = path.join(tmp, `${label}-full.onnx`);
  const t0 = performance.now();
  const full = await writeFullDecoder(modelDir, fullPath);
  say(
    `export ${label}: uncompressed decoder (reference)`,
    `${((performance.now() - t0) / 1000).toFixed(1)} s to build, model.onnx ${size(fs.statSync(fullPath).size)}`,
  );

  for (const keySpace of KEY_SPACES) {
    const name = `${label} kqsvd ${keySpace} ${d / 2}/${d / 2}`;
    const { plan } = await compressToPlan({
      modelDir,
      calib: text,
      eval: text,
      method: 'kqsvd',
      ranks: { k: d / 2, v: d / 2 },
      keySpace,
      window,
      calibWindows: 4,
      heldoutWindows: 1,
      evalWindows: 2,
    });
    const out = path.join(tmp, `${label}-${keySpace}`);
    const report = await exportPlan(plan, { out });
    const s = report.export.seconds;
    const v = report.export.verification;
    say(
      `export ${name}: seconds`,
      `write ${secs(s.write)}, onnx ${secs(s.onnx)}, verify ${secs(s.verify)}, total ${secs(s.total)} ` +
        `(onnx rel. error ${v.onnxRelError.toExponential(1)})`,
    );
    const files = report.export.files;
    const total = files.reduce((a, f) => a + f.bytes, 0);
    say(
      `export ${name}: files`,
      `${files.map((f) => `${f.name} ${size(f.bytes)}`).join(', ')}; all ${size(total)} (reports excluded)`,
    );

    // the cache widths as the exported folder declares them
    const exported = await openModel(out);
    const thin: Decoder = { path: path.join(out, ONNX_FILE), layers: exported.spec.kvCompression! };
    await exported.close();
    for (const r of await decodeBoth(spec, thin, full, ids, contexts)) {
      const at = `export ${name}: decode at ${r.context}`;
      const tps = r.tokensPerSecond;
      say(
        `${at}, tokens/s thin / full`,
        `${tps.thin.toFixed(1)} / ${tps.full.toFixed(1)} = ${(tps.thin / tps.full).toFixed(2)} ` +
          `(prefill ${r.context - DECODE_STEPS}, ${DECODE_STEPS} single-token steps)`,
      );
      for (const which of ['thin', 'full'] as const) {
        // every token the session holds, at float32
        const predicted = r.context * r.elementsPerToken[which] * 4;
        say(
          `${at}, ${which} cache bytes`,
          `${n(r.bytes[which])} measured, ${r.context} × ${n(r.elementsPerToken[which])} × 4 = ` +
            `${n(predicted)} predicted, measured / predicted ${(r.bytes[which] / predicted).toFixed(3)}`,
        );
      }
      say(`${at}, cache bytes thin / full`, (r.bytes.thin / r.bytes.full).toFixed(3));
    }
    await fs.promises.rm(out, { recursive: true, force: true });
  }
  await fs.promises.rm(fullPath, { force: true });
}

export async function benchExport(
  storiesDir: string,
  synthDir: string,
  text: string,
  say: Say,
): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rankwise-bench-export-'));
  try {
    await benchModel('stories260K', storiesDir, text, tmp, say);
    await benchModel('125M', synthDir, text, tmp, say);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
