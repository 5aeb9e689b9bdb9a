/**
 * The pre-flight estimate of a compress job (ARCHITECTURE.md §4: peak memory is about one layer's weights
 * plus its activations). Deliberately a model of the engine's own buffers, from the spec and the settings
 * alone, so it answers in milliseconds before anything loads. Time is a rough figure from a throughput
 * measured on a 2-core machine; memory is what gates a job.
 */
import { defaultHeldoutWindows } from './stages/load.ts';
import { EFFECT_ROUNDS, EFFECT_WINDOWS } from './stages/effects.ts';
import { objectiveOf } from './stages/objective.ts';
import { EFFECT_GROUP_BYTES } from '../runtime/layer-effects.ts';
import { PROBE_SHARES } from '../core/allocate/effect.ts';
import { DEFAULT_TRAIN_WINDOWS } from '../methods/stief-settings.ts';
import { defaultProfileRows } from '../runtime/sampled-rows.ts';
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
  const e2e = objectiveOf(s, spec, methodById(s.method).rankPlan(spec, s)) === 'e2e';
  const probeWindows = Math.min(calib, EFFECT_WINDOWS);
  // every probe stream's hidden states, in groups of windows bounded by the effects stage's memory
  const probeStreams = 1 + spec.numLayers * (PROBE_SHARES.length + 2);
  const streams = e2e ? Math.min(EFFECT_GROUP_BYTES, probeStreams * probeWindows * T * D * 4) : 0;
  const activations = hidden + scores + held + streams;
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
  if (e2e) {
    // a probe of layer ℓ runs the L − ℓ layers from it: the first pass probes PROBE_SHARES points of each
    // layer, each later one two more (the allocation's choice and the layer uncompressed), plus the base
    // streams of every pass; then the prediction: the original and every candidate whole over the
    // calibration windows (the original's evaluation pass moves here from the eval stage)
    const L = spec.numLayers;
    const probes = PROBE_SHARES.length + EFFECT_ROUNDS * (PROBE_SHARES.length + 2);
    const layerRuns = (probes * L * (L + 1)) / 2 + (EFFECT_ROUNDS + 1) * L;
    flops += 2 * layerMacs(spec) * layerRuns * probeWindows * T;
    const candidates = EFFECT_ROUNDS + 1 + (s.kvFraction !== undefined ? 1 : 0);
    flops += 2 * layerMacs(spec) * L * (1 + candidates) * calib * T;
  }
  if (s.finetune) {
    // a step is a gradient (about three forwards) over the training windows at the sampled positions, and
    // every tenth a held-out check; plus one pass to capture each layer's windows
    const steps = s.finetune.steps * spec.numLayers;
    flops += 2 * layerMacs(spec) * steps * (3 * DEFAULT_TRAIN_WINDOWS + heldWindows / 10) * rows;
    flops += 2 * layerMacs(spec) * spec.numLayers * (DEFAULT_TRAIN_WINDOWS + heldWindows) * T;
  }
  return {
    memoryBytes,
    availableBytes,
    fits: memoryBytes <= availableBytes,
    seconds: flops / FLOPS,
    breakdown: { weights, activations, statistics, runtime: RUNTIME_BYTES },
  };
}
