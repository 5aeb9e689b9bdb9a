/**
 * The pre-flight estimate of a compress job (ARCHITECTURE.md §4: peak memory is about one layer's weights
 * plus its activations). Deliberately a model of the engine's own buffers, from the spec and the settings
 * alone, so it answers in milliseconds before anything loads. Time is a rough figure from a throughput
 * measured on a 2-core machine; memory is what gates a job.
 */
import { defaultHeldoutWindows } from './stages/load.ts';
import { defaultProfileRows } from '../runtime/layer-sweep.ts';
import os from 'node:os';

import type { JobEstimate } from '../contract/api.ts';
import { methodById } from '../methods/index.ts';
import type { ModelSpec } from '../model/types.ts';
import type { CompressSettings } from './settings.ts';

const MiB = 2 ** 20;
/** Node, onnxruntime's arenas and the native addon: measured resident size of an idle engine, rounded up. */
const RUNTIME_BYTES = 300 * MiB;
/** Sustained float32 throughput of the layer graphs on the slowest machine we run on (see docs/benchmarks.md). */
const FLOPS = 20e9;

/** Multiply-adds per token of one decoder layer's weights (attention projections + MLP). */
function layerMacs(spec: ModelSpec): number {
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: F } = spec;
  const attn = D * (H * d + 2 * Hkv * d) + H * d * D;
  const mlp = (spec.block.mlp.gated ? 3 : 2) * D * F;
  return attn + mlp;
}

export function estimateJob(
  spec: ModelSpec,
  s: CompressSettings,
  availableBytes = os.freemem(),
): JobEstimate {
  const T = s.window ?? 512;
  const calib = s.calibWindows ?? 32;
  const evalWindows = s.evalWindows ?? 64;
  const D = spec.hiddenSize;
  const layerBytes = layerMacs(spec) * 4;
  const embedBytes = spec.vocabSize * D * 4 * (spec.tieWordEmbeddings ? 1 : 2);
  // one layer loaded as float32, plus the copy onnxruntime makes of its inputs; the embeddings stay resident
  const weights = 2 * layerBytes + embedBytes;
  // hidden states of the windows in flight (input and output of a layer), the attention scores of one
  // micro-batch (capped by the forward pass's batch budget), and the held-out samples kept per layer
  const hidden = 2 * Math.min(calib, 64) * T * D * 4;
  const scores = Math.min(128 * MiB, spec.numHeads * T * T * 4 * Math.min(calib, 8));
  const held = 2 * 8 * T * D * 4;
  const activations = hidden + scores + held;
  const statistics = spec.numLayers * spec.numKvHeads * 5 * spec.headDim * spec.headDim * 8;
  const memoryBytes = weights + activations + statistics + RUNTIME_BYTES;

  // the profile: 8 × 8 grid pairs, plus the 8 key-only pairs of a second key space, each a layer forward at
  // the sampled positions of every held-out window (runtime/layer-sweep.ts); training samples alike
  const rows = Math.min(T, s.profileTokens ?? defaultProfileRows(spec));
  const gridPoints = s.ranks ? 1 : 72;
  const heldWindows = s.heldoutWindows ?? defaultHeldoutWindows(calib);
  const passes = (calib + 2 * evalWindows) * T + gridPoints * heldWindows * rows;
  let flops = 2 * layerMacs(spec) * spec.numLayers * passes;
  const training = methodById(s.method).cost(s).training;
  if (training) {
    const { forwardsPerStep, steps, windows } = training;
    flops += forwardsPerStep * steps * 2 * layerMacs(spec) * spec.numLayers * windows * rows;
  }
  return {
    memoryBytes,
    availableBytes,
    fits: memoryBytes <= availableBytes,
    seconds: flops / FLOPS,
    breakdown: { weights, activations, statistics, runtime: RUNTIME_BYTES },
  };
}
