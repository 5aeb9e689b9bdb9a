import type { LayerGrams } from '../core/kv.ts';
import type { LayerWeights } from '../model/types.ts';
import { checkLayerOutput, plan } from './forward.ts';
import { progressTracker, throwIfCancelled, type Progress } from '../core/progress.ts';
import { CAPTURE_OUTPUTS } from './graphs/decoder-layer.ts';
import { layersAhead, layerWeightFeeds, type ModelRunner } from './runner.ts';

export interface CaptureOptions {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /** Memory for one group's hidden states; windows beyond it stream through in further groups. */
  groupBytes?: number;
  batchBytes?: number;
}

function emptyGrams(heads: number, d: number): LayerGrams {
  const list = () => Array.from({ length: heads }, () => new Float64Array(d * d));
  return { tokens: 0, kPre: list(), kPost: list(), qPre: list(), qPost: list(), v: list() };
}

/** Adds a [H_kv, d, d] float32 graph output into per-head float64 accumulators. */
function accumulate(into: Float64Array[], data: Float32Array, d: number): void {
  into.forEach((acc, g) => {
    const block = data.subarray(g * d * d, (g + 1) * d * d);
    for (let i = 0; i < d * d; i++) acc[i] += block[i];
  });
}

/**
 * Pass 1 of calibration: the original model over the fitting windows, accumulating every layer's
 * per-KV-head Gram matrices. Windows stream through in groups (each group goes through all layers), so
 * memory holds one group's hidden states and L·5·H_kv small d×d sums, however many windows there are.
 */
export async function captureGrams(
  runner: ModelRunner,
  windows: Int32Array[],
  opts: CaptureOptions = {},
): Promise<LayerGrams[]> {
  const spec = runner.spec;
  const d = spec.headDim;
  const grams = Array.from({ length: spec.numLayers }, () => emptyGrams(spec.numKvHeads, d));
  const groups = plan(runner, windows, opts);
  const tick = progressTracker('capture', groups.length * spec.numLayers, opts.onProgress);
  const C = CAPTURE_OUTPUTS;
  for (const group of groups) {
    throwIfCancelled(opts.signal);
    for (const b of group) b.hidden = await runner.embed(b.ids, b.members.length, b.T);
    for await (const { layer, weights } of layersAhead(runner.source)) {
      const feeds = layerWeightFeeds(spec, weights);
      const gl = grams[layer];
      for (const b of group) {
        throwIfCancelled(opts.signal);
        const out = await runner.layerVariant(
          { capture: true },
          feeds,
          b.hidden as Float32Array,
          b.members.length,
          b.T,
          layer,
        );
        accumulate(gl.kPre, out[C.kPre].data as Float32Array, d);
        accumulate(gl.kPost, out[C.kPost].data as Float32Array, d);
        accumulate(gl.qPre, out[C.qPre].data as Float32Array, d);
        accumulate(gl.qPost, out[C.qPost].data as Float32Array, d);
        accumulate(gl.v, out[C.v].data as Float32Array, d);
        gl.tokens += b.members.length * b.T;
        b.hidden = out.y.data as Float32Array;
        checkLayerOutput(runner, layer, b.hidden, runner.spec.hiddenSize);
      }
      tick(layer);
    }
    for (const b of group) b.hidden = null;
  }
  return grams;
}

/** One micro-batch of held-out windows at one layer: the original layer's input and output. */
export interface HeldoutBatch {
  B: number;
  T: number;
  x: Float32Array;
  y: Float32Array;
  /**
   * The layer x and y belong to: whoever runs the layer again on x takes its attention mask (sliding
   * window) from it. May be absent only for a model whose layers all attend alike.
   */
  layer?: number;
}

export interface HeldoutLayer {
  layer: number;
  weights: LayerWeights;
  batches: HeldoutBatch[];
}

export interface SampledLayer {
  layer: number;
  weights: LayerWeights;
  /** One list of batches per window set, in the order the sets were given. */
  sets: HeldoutBatch[][];
}

/**
 * Pass 2: kept samples of calibration windows, layer by layer. Each layer is yielded with the original
 * inputs and outputs of every set (held-out windows for the error-rank profile; training windows for
 * methods that learn) before the next layer runs, and the next layer's input is always the *original*
 * output.
 */
export async function* layerSamples(
  runner: ModelRunner,
  windowSets: Int32Array[][],
  opts: Pick<CaptureOptions, 'signal' | 'batchBytes'> = {},
): AsyncGenerator<SampledLayer> {
  const spec = runner.spec;
  // One group per set: the samples are kept whole by design.
  const groups = windowSets.map((w) =>
    w.length === 0
      ? []
      : plan(runner, w, { batchBytes: opts.batchBytes, groupBytes: Number.POSITIVE_INFINITY })[0],
  );
  for (const group of groups)
    for (const b of group) b.hidden = await runner.embed(b.ids, b.members.length, b.T);
  for await (const { layer, weights } of layersAhead(runner.source)) {
    throwIfCancelled(opts.signal);
    const feeds = layerWeightFeeds(spec, weights);
    const sets: HeldoutBatch[][] = [];
    for (const group of groups) {
      const batches: HeldoutBatch[] = [];
      for (const b of group) {
        const x = b.hidden as Float32Array;
        const y = await runner.layer(feeds, x, b.members.length, b.T, layer);
        batches.push({ B: b.members.length, T: b.T, x, y, layer });
        b.hidden = y;
        checkLayerOutput(runner, layer, y, runner.spec.hiddenSize);
      }
      sets.push(batches);
    }
    yield { layer, weights, sets };
  }
}

/** The held-out windows alone, layer by layer (see layerSamples). */
export async function* heldoutLayers(
  runner: ModelRunner,
  windows: Int32Array[],
  opts: Pick<CaptureOptions, 'signal' | 'batchBytes'> = {},
): AsyncGenerator<HeldoutLayer> {
  for await (const s of layerSamples(runner, [windows], opts)) {
    yield { layer: s.layer, weights: s.weights, batches: s.sets[0] };
  }
}
