/**
 * Verification before anything is kept (ARCHITECTURE.md §7): the written folder is reloaded with the
 * app's own reader and run on held-out windows, and the ONNX decoder is run with its KV cache (prefill,
 * then token by token); both must give the in-memory compressed model's logits to 1e-4 relative.
 */
import path from 'node:path';

import type { CompressionPlan } from './plan.ts';
import { kvElementsPerToken } from '../model/kv-layout.ts';
import { openModel } from '../model/model.ts';
import type { Engine } from '../runtime/engine.ts';
import { forwardSequences } from '../runtime/forward.ts';
import { throwIfCancelled, type Progress } from '../core/progress.ts';
import { KvDecoderSession } from '../runtime/kv-session.ts';
import { ModelRunner, withCompression, type WeightSource } from '../runtime/runner.ts';
import { expandedSource, type CompressedModel } from './compressed-model.ts';
import type { VerificationReport } from '../contract/report.ts';

export const VERIFY_TOLERANCE = 1e-4;

export interface VerifyOptions {
  /** Tokens decoded one at a time after the prefill (the rest of the first window is prefilled). */
  decodeSteps: number;
  onnxFile: string | null;
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

export async function verifyExport(
  dir: string,
  cm: CompressedModel,
  plan: CompressionPlan,
  windows: Int32Array[],
  engine: Engine,
  opts: VerifyOptions,
): Promise<VerificationReport> {
  const reference = new ModelRunner(engine, referenceSource(cm, plan));
  const expected = await forwardSequences(reference, windows, {
    logits: 'all',
    signal: opts.signal,
    stage: 'verify reference',
    onProgress: opts.onProgress,
  });
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
  const prefill = ids.length - steps;
  let onnxRelError = 0;
  let presentBytes = { measured: 0, predicted: 0 };
  if (opts.onnxFile) {
    const session = await KvDecoderSession.create(opts.onnxFile, {
      numKvHeads: spec.numKvHeads,
      vocabSize: spec.vocabSize,
      layers: spec.kvCompression!,
    });
    try {
      const ref = expected.logits![0];
      const first = await session.prefill(ids.subarray(0, prefill));
      onnxRelError = relError(first, ref.subarray(0, prefill * V));
      for (let t = prefill; t < ids.length; t++) {
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
      presentBytes = {
        measured: session.presentBytes(),
        predicted: ids.length * kvElementsPerToken(spec.kvCompression, spec) * Float32Array.BYTES_PER_ELEMENT,
      };
    } finally {
      await session.release();
    }
  }
  const passed =
    checkpointRelError < VERIFY_TOLERANCE &&
    onnxRelError < VERIFY_TOLERANCE &&
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
    passed,
  };
}

export function describeFailure(v: VerificationReport, dir: string): string {
  const parts: string[] = [];
  if (!(v.checkpointRelError < v.tolerance)) {
    parts.push(
      `the reloaded checkpoint's logits differ by ${v.checkpointRelError.toExponential(2)} (relative)`,
    );
  }
  if (!(v.onnxRelError < v.tolerance)) {
    parts.push(`the ONNX decoder's logits differ by ${v.onnxRelError.toExponential(2)} (relative)`);
  }
  if (v.presentBytes.measured !== v.presentBytes.predicted) {
    parts.push(
      `the ONNX cache holds ${v.presentBytes.measured} B where ${v.presentBytes.predicted} B were predicted`,
    );
  }
  return `verification of ${path.basename(dir)} failed: ${parts.join('; ')} (tolerance ${v.tolerance})`;
}
