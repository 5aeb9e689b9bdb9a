/**
 * Verification before anything is kept (ARCHITECTURE.md §7): the written folder is reloaded with the
 * app's own reader and run on held-out windows, and the ONNX decoder is run with its KV cache (prefill,
 * then token by token); both must give the in-memory compressed model's logits, to 1e-4 relative (a
 * 16-bit ONNX cache: to ONNX_TOLERANCE.float16), and the cache must hold the bytes its layout predicts.
 */
import path from 'node:path';

import type ort from 'onnxruntime-node';

import { RankwiseError } from '../core/errors.ts';
import type { CompressionPlan } from './plan.ts';
import { originalKvBytesPerToken } from '../model/info.ts';
import { kvElementsPerToken } from '../model/kv-layout.ts';
import { openModel } from '../model/model.ts';
import type { Engine } from '../runtime/engine.ts';
import { forwardSequences } from '../runtime/forward.ts';
import {
  FLOAT32_PRECISION,
  type KvCacheDtype,
  type KvDecoderPrecision,
} from '../runtime/graphs/kv-decoder.ts';
import { perplexity } from '../runtime/perplexity.ts';
import { throwIfCancelled, type Progress } from '../core/progress.ts';
import { KvDecoderSession } from '../runtime/kv-session.ts';
import { ModelRunner, withCompression, type WeightSource } from '../runtime/runner.ts';
import { expandedSource, type CompressedModel } from './compressed-model.ts';
import { onnxCacheBytes } from './onnx-files.ts';
import type { VerificationReport } from '../contract/report.ts';

export const VERIFY_TOLERANCE = 1e-4;

/**
 * The ONNX decoder's logits against the in-memory model's, by cache type. A float16 cache rounds every
 * cached key and value to 11 significant bits (up to 2^-11 ≈ 4.9e-4 relative) where the in-memory model
 * keeps float32, and a float32 checkpoint exported in float16 rounds its weights too. Measured (max |Δlogit|
 * / max |logit|, a prefill then 32 decode steps): F16 and BF16 synthetic Llama and GPT-2 models 4e-5 to
 * 1.5e-4, stories260K (F32, so its weights rounded to float16 as well) 1.3e-3. 1e-2 leaves room for deeper
 * models and still fails a wrong layout, rotation or an overflowed (infinite) cache, which miss by far more.
 */
export const ONNX_TOLERANCE: Readonly<Record<KvCacheDtype, number>> = {
  float32: VERIFY_TOLERANCE,
  float16: 1e-2,
};

/**
 * Tokens the ONNX decoder prefills before decoding: enough to exercise the cache, RoPE away from position
 * 0 and a sliding window; more only adds prompt logits, [T, vocabulary] floats on both sides of the
 * comparison (a 496-token prefill of a 128K vocabulary is 0.25 GiB each).
 */
export const ONNX_PREFILL_TOKENS = 112;

export interface VerifyOptions {
  /** Tokens decoded one at a time after the prefill (ONNX_PREFILL_TOKENS of the first window). */
  decodeSteps: number;
  onnxFile: string | null;
  /** What the ONNX file was written in (default float32). */
  onnxPrecision?: KvDecoderPrecision;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** max |a − b| / max |b| over all entries: one scale for the whole logit tensor, as the design asks. */
export function relError(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}

/**
 * The model the export promised: for an F32 checkpoint the compress job's own in-memory model
 * (projections applied at run time); for F16/BF16 the folded weights rounded to that dtype, since the
 * file cannot hold more precision than that.
 */
export function referenceSource(cm: CompressedModel, plan: CompressionPlan): WeightSource {
  return cm.spec.dtype === 'F32' ? withCompression(cm.source, plan.layers) : expandedSource(cm);
}

const perplexityOf = (nll: Float32Array[]) => {
  let sum = 0;
  let n = 0;
  for (const row of nll) {
    for (const x of row) sum += x;
    n += row.length;
  }
  return Math.exp(sum / n);
};

/**
 * The ONNX check's session: the engine's (its threads, no memory arena), with neither constant folding
 * nor pre-packing. Optimised, onnxruntime folds every Cast of 16-bit weights into a float32 copy and
 * packs the MatMul weights once more, so a 2.3 GiB BF16 decoder took 11 GiB to check; unoptimised, each
 * weight is cast as it is used and freed after it. The check is of the file, not of its speed.
 */
export function verifySessionOptions(
  engine: Engine,
  precision: KvDecoderPrecision,
): ort.InferenceSession.SessionOptions {
  const sixteenBit = precision.weights !== 'float32';
  return {
    ...engine.sessionOptions(),
    ...(sixteenBit ? { graphOptimizationLevel: 'disabled' as const } : {}),
    extra: { session: { disable_prepacking: '1' } },
  };
}

export async function verifyExport(
  dir: string,
  cm: CompressedModel,
  plan: CompressionPlan,
  windows: Int32Array[],
  engine: Engine,
  opts: VerifyOptions,
): Promise<VerificationReport> {
  // The runner goes out of scope with the forward: its embeddings (1 GiB in float32 at 1B) must not stay
  // alive beside the reloaded model's.
  const expected = await forwardSequences(new ModelRunner(engine, referenceSource(cm, plan)), windows, {
    logits: 'all',
    signal: opts.signal,
    stage: 'verify reference',
    onProgress: opts.onProgress,
  });
  cm.forgetLayers();
  throwIfCancelled(opts.signal);

  const reloaded = await openModel(dir);
  let checkpointRelError = 0;
  let reloadedPpl: number;
  try {
    const got = await forwardSequences(new ModelRunner(engine, reloaded), windows, {
      logits: 'all',
      signal: opts.signal,
      stage: 'verify checkpoint',
      onProgress: opts.onProgress,
    });
    got.logits!.forEach((l, i) => {
      checkpointRelError = Math.max(checkpointRelError, relError(l, expected.logits![i]));
    });
    reloadedPpl = perplexityOf(got.nll);
  } finally {
    await reloaded.close();
  }
  throwIfCancelled(opts.signal);

  const spec = cm.spec;
  const V = spec.vocabSize;
  const ids = windows[0];
  const steps = Math.min(opts.decodeSteps, ids.length - 1);
  const prefill = Math.min(ids.length - steps, ONNX_PREFILL_TOKENS);
  const checked = prefill + steps;
  // the ONNX check reads the first window's first tokens only; the rest of the logits (0.5 GiB per window
  // at a 128K vocabulary) would sit beside the decoder's weights
  const firstLogits = expected.logits![0].slice(0, checked * V);
  expected.logits = undefined;
  let onnxRelError = 0;
  let presentBytes = { measured: 0, predicted: 0 };
  const precision = opts.onnxPrecision ?? FLOAT32_PRECISION;
  const onnxTolerance = ONNX_TOLERANCE[precision.cache];
  let onnx: VerificationReport['onnx'];
  if (opts.onnxFile) {
    const session = await KvDecoderSession.create(
      opts.onnxFile,
      { numKvHeads: spec.numKvHeads, vocabSize: spec.vocabSize, layers: spec.kvCompression! },
      verifySessionOptions(engine, precision),
    );
    try {
      const ref = firstLogits;
      const first = await session.prefill(ids.subarray(0, prefill));
      onnxRelError = relError(first, ref.subarray(0, prefill * V));
      for (let t = prefill; t < checked; t++) {
        throwIfCancelled(opts.signal);
        const row = await session.step(ids[t]);
        onnxRelError = Math.max(onnxRelError, relError(row, ref.subarray(t * V, (t + 1) * V)));
        opts.onProgress?.({
          stage: 'verify onnx',
          layer: -1,
          done: t - prefill + 1,
          total: steps,
          etaSeconds: null,
        });
      }
      if (session.cacheType !== precision.cache) {
        throw new RankwiseError(
          'internal',
          `the ONNX cache is ${session.cacheType}, written as ${precision.cache}`,
        );
      }
      // measured from what onnxruntime returned, at the type the file declares, against the layout
      const measured = session.presentBytes();
      presentBytes = {
        measured,
        predicted: checked * kvElementsPerToken(spec.kvCompression, spec) * onnxCacheBytes(precision),
      };
      onnx = {
        cacheDtype: precision.cache,
        weightsDtype: precision.weights,
        tolerance: onnxTolerance,
        // the saving against the original model as it runs, at its own dtype: not against float32
        cacheBytesPerToken: { measured: measured / checked, original: originalKvBytesPerToken(spec) },
      };
    } finally {
      await session.release();
    }
  }
  const passed =
    checkpointRelError < VERIFY_TOLERANCE &&
    onnxRelError < onnxTolerance &&
    presentBytes.measured === presentBytes.predicted;
  return {
    windows: windows.length,
    checkpointRelError,
    onnxRelError,
    onnxPrefillTokens: opts.onnxFile ? prefill : 0,
    onnxDecodeSteps: opts.onnxFile ? steps : 0,
    perplexity: { reloaded: reloadedPpl, inMemory: perplexityOf(expected.nll) },
    presentBytes,
    tolerance: VERIFY_TOLERANCE,
    ...(onnx ? { onnx } : {}),
    passed,
  };
}

/**
 * The written folder's perplexity, exactly as `rankwise eval` measures a folder: reloaded by the app's
 * reader (16-bit weights as the files hold them) and run on `windows`. This, not the compress job's
 * in-memory figure, is the export's compressed perplexity.
 */
export async function exportedPerplexity(
  dir: string,
  windows: Int32Array[],
  engine: Engine,
  opts: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {},
): Promise<number> {
  const model = await openModel(dir);
  try {
    const r = await perplexity(new ModelRunner(engine, model), windows, {
      signal: opts.signal,
      onProgress: opts.onProgress,
      // the compressed model's perplexity, now of the files (a stage the faces already name)
      stage: 'eval compressed',
    });
    return r.perplexity;
  } finally {
    await model.close();
  }
}

export function describeFailure(v: VerificationReport, dir: string): string {
  const parts: string[] = [];
  if (!(v.checkpointRelError < v.tolerance)) {
    parts.push(
      `the reloaded checkpoint's logits differ by ${v.checkpointRelError.toExponential(2)} (relative)`,
    );
  }
  const onnxTolerance = v.onnx?.tolerance ?? v.tolerance;
  if (!(v.onnxRelError < onnxTolerance)) {
    const half = v.onnx?.cacheDtype === 'float16';
    parts.push(
      `the ONNX decoder's logits differ by ${v.onnxRelError.toExponential(2)} (relative; tolerance ${onnxTolerance}` +
        `${half ? ', a float16 cache: an ONNX dtype of float32 keeps the cache in float32' : ''})`,
    );
  }
  if (v.presentBytes.measured !== v.presentBytes.predicted) {
    parts.push(
      `the ONNX cache holds ${v.presentBytes.measured} B where ${v.presentBytes.predicted} B were predicted`,
    );
  }
  return `verification of ${path.basename(dir)} failed: ${parts.join('; ')} (tolerance ${v.tolerance} for the checkpoint)`;
}
