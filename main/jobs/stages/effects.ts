/**
 * The end-to-end allocation (core/allocate/effect.ts). Layers' effects on the model's NLL do not add up:
 * compressing several layers costs more than the sum of compressing each alone (on stories260K at half the
 * cache, about twice), so a map measured around the original model misjudges an allocation that
 * compresses every layer. So the maps are measured again around the allocation they chose: each layer's
 * probes change that layer alone in the compressed model, against itself with that layer uncompressed,
 * and the knapsack re-solves over the new maps. Every allocation visited (and the layer-error objective's,
 * for a memory target) is a candidate; the one whose whole compressed model is predicted the lowest NLL on
 * the evaluation text, from every calibration window (text-shift.ts), wins, so the end-to-end objective
 * never picks worse than the layer objective by that measure.
 */
import { effectBudget, probePairs, type LayerEffect } from '../../core/allocate/effect.ts';
import { shiftedIncrease } from '../../core/allocate/text-shift.ts';
import type { Allocation } from '../../core/allocate/index.ts';
import type { Progress } from '../../core/progress.ts';
import { layerEffects } from '../../runtime/layer-effects.ts';
import { forwardSequences } from '../../runtime/forward.ts';
import { ModelRunner, withCompression } from '../../runtime/runner.ts';
import { allocateProfiles } from './allocate.ts';
import type { LayerJob } from './layer-job.ts';
import type { LayerResults } from './layers.ts';

/**
 * Re-measurements of the maps around the latest allocation, after the first around the original. On
 * stories260K a third round chose the same allocations as the second.
 */
export const EFFECT_ROUNDS = 2;
/**
 * Calibration windows the probes run on, at most: the held-out ones first, then fitted ones. On
 * stories260K 8 and 16 windows chose the same allocations, at half the cost.
 */
export const EFFECT_WINDOWS = 8;

export interface EndToEnd {
  allocation: Allocation;
  /** The maps the last allocation was solved over: what a re-allocation of this job solves over. */
  effects: LayerEffect[];
  /**
   * The chosen allocation's NLL increase over the original, predicted for the evaluation text from every
   * calibration window (core/allocate/text-shift.ts).
   */
  nllIncrease: number;
  /** Every candidate weighed: its ranks and its predicted NLL increase. */
  candidates: { source: string; ranks: string; nllIncrease: number }[];
  /** The original model's mean NLL on the evaluation windows, measured for the prediction. */
  originalEvalNll: number;
}

/** The texts the prediction runs on: every calibration window and the evaluation windows. */
export interface PredictionTexts {
  calib: Int32Array[];
  eval: Int32Array[];
}

/** The calibration windows the probes run on: every held-out window, then fitted ones, EFFECT_WINDOWS in all. */
export function effectWindows(held: Int32Array[], fit: Int32Array[]): Int32Array[] {
  return [...held, ...fit].slice(0, Math.max(held.length, EFFECT_WINDOWS));
}

export async function allocateEndToEnd(
  job: LayerJob,
  layers: LayerResults,
  windows: Int32Array[],
  texts: PredictionTexts,
): Promise<EndToEnd> {
  const { spec, s, runner } = job;
  // one stage for every pass: the probe passes, the original on both texts, then each candidate whole
  const candidateCount = EFFECT_ROUNDS + 1 + (s.kvFraction !== undefined ? 1 : 0);
  const nextPass = stagePasses(job, [
    ...Array<number>(1 + EFFECT_ROUNDS).fill(windows.length),
    texts.calib.length,
    texts.eval.length,
    ...Array<number>(candidateCount).fill(texts.calib.length),
  ]);
  const compressions = (a: Allocation) => a.layers.map((l, i) => layers.fits[i].at(l.kRank, l.vRank));
  const ranks = (a: Allocation) => a.layers.map((l) => `${l.kRank}/${l.vRank}`).join(' ');

  // around the original: each layer's compressions against the original model
  let pairs = layers.profiles.map((p) => probePairs(p.points, spec.headDim));
  const first = await layerEffects(
    runner,
    windows,
    pairs.map((ps, i) => ps.map((p) => layers.fits[i].at(p.kRank, p.vRank))),
    nextPass(),
  );
  let effects = mapsOf(layers, pairs, first.effects, 0);
  let allocation = allocateProfiles(s, spec, layers.profiles, effects);
  const visited: { source: string; allocation: Allocation; effects: LayerEffect[] }[] = [];

  for (let round = 1; round <= EFFECT_ROUNDS; round++) {
    // around the allocation: each layer's probe points, its chosen point and the layer uncompressed
    pairs = layers.profiles.map((p, i) =>
      withChoice(probePairs(p.points, spec.headDim), allocation.layers[i]),
    );
    const probes = pairs.map((ps, i) => [null, ...ps.map((p) => layers.fits[i].at(p.kRank, p.vRank))]);
    const around = await layerEffects(runner, windows, probes, {
      ...nextPass(),
      base: compressions(allocation),
    });
    visited.push({ source: round === 1 ? 'original maps' : `round ${round - 1} maps`, allocation, effects });
    effects = mapsOf(layers, pairs, around.effects, 1);
    allocation = allocateProfiles(s, spec, layers.profiles, effects);
  }
  visited.push({ source: `round ${EFFECT_ROUNDS} maps`, allocation, effects });
  if (s.kvFraction !== undefined) {
    visited.push({
      source: 'layer errors',
      allocation: allocateProfiles(s, spec, layers.profiles, null),
      effects,
    });
  }

  // Every candidate is weighed whole, by its increase predicted for the evaluation text from all the
  // calibration windows (the probes' few windows choose the maps, not the answer).
  const tokenNll = async (r: ModelRunner, seqs: Int32Array[]) =>
    concatenated((await forwardSequences(r, seqs, { ...nextPass(), stage: 'effects' })).nll);
  const originalCalib = await tokenNll(runner, texts.calib);
  const originalEval = await tokenNll(runner, texts.eval);
  const candidates = [];
  // rounds often revisit an allocation: it is measured once (its pass is skipped, so progress jumps)
  const predicted = new Map<string, number>();
  for (const v of visited) {
    const key = ranks(v.allocation);
    let nllIncrease = predicted.get(key);
    if (nllIncrease === undefined) {
      const compressed = await tokenNll(
        new ModelRunner(runner.engine, withCompression(runner.source, compressions(v.allocation))),
        texts.calib,
      );
      nllIncrease = shiftedIncrease({ original: originalCalib, compressed }, originalEval);
      predicted.set(key, nllIncrease);
    } else nextPass();
    candidates.push({ ...v, ranks: key, nllIncrease });
  }
  const best = choose(candidates, s.maxPplIncrease, spec.numLayers);
  return {
    allocation: {
      ...best.allocation,
      predictedNllIncrease: best.nllIncrease,
      ...verdict(best, s.maxPplIncrease),
    },
    effects: best.effects,
    nllIncrease: best.nllIncrease,
    candidates: candidates.map(({ source, ranks: r, nllIncrease }) => ({ source, ranks: r, nllIncrease })),
    originalEvalNll: mean(originalEval),
  };
}

function concatenated(rows: Float32Array[]): Float64Array {
  const out = new Float64Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

const mean = (a: Float64Array) => a.reduce((acc, v) => acc + v, 0) / a.length;

/**
 * The options of each pass in turn (pass i runs over `windows[i]` windows), reporting the whole stage as
 * `effects`: a pass's own tracker counts its windows from 0, so pass i's count is laid after the passes
 * before it, and the ETA is the pace so far over what is left.
 */
function stagePasses(
  job: LayerJob,
  windows: number[],
): () => { signal?: AbortSignal; onProgress?: (p: Progress) => void } {
  const report = job.opts.onProgress;
  const t0 = performance.now();
  const total = windows.reduce((a, b) => a + b, 0);
  let next = 0;
  return () => {
    const before = windows.slice(0, Math.min(next++, windows.length - 1)).reduce((a, b) => a + b, 0);
    const onProgress = report
      ? (p: Progress) => {
          const done = Math.min(before + p.done, total);
          const elapsed = (performance.now() - t0) / 1000;
          report({
            stage: 'effects',
            layer: p.layer,
            done,
            total,
            etaSeconds: done > 0 ? (elapsed / done) * (total - done) : null,
          });
        }
      : undefined;
    return { signal: job.opts.signal, onProgress };
  };
}

/**
 * The lowest predicted NLL; under a perplexity target, the smallest cache among the candidates that meet it
 * as predicted (the lowest NLL when none does).
 */
function choose<C extends { allocation: Allocation; nllIncrease: number }>(
  candidates: C[],
  maxPplIncrease: number | undefined,
  layers: number,
): C {
  const byNll = [...candidates].sort((a, b) => a.nllIncrease - b.nllIncrease);
  if (maxPplIncrease === undefined) return byNll[0];
  const limit = effectBudget(maxPplIncrease, layers) * layers;
  const meeting = candidates.filter((c) => c.nllIncrease <= limit);
  if (meeting.length === 0) return byNll[0];
  return meeting.sort(
    (a, b) =>
      a.allocation.totalBytesPerToken - b.allocation.totalBytesPerToken || a.nllIncrease - b.nllIncrease,
  )[0];
}

/** Under a perplexity target, whether the chosen allocation meets it as predicted for the evaluation text. */
function verdict(
  best: { nllIncrease: number },
  maxPplIncrease: number | undefined,
): { feasible: boolean; reason?: string } | Record<string, never> {
  if (maxPplIncrease === undefined) return {};
  const rise = Math.expm1(best.nllIncrease);
  if (rise <= maxPplIncrease) return { feasible: true, reason: undefined };
  return {
    feasible: false,
    reason:
      `the most accurate allocation found is predicted to raise perplexity by ${(100 * rise).toFixed(1)} % on the ` +
      `evaluation text, more than the ${(100 * maxPplIncrease).toFixed(1)} % asked; it is returned instead`,
  };
}

/** The probe pairs with the allocation's choice added (when it is compressed and not among them). */
function withChoice(
  pairs: { kRank: number; vRank: number; error: number }[],
  chosen: { kRank: number; vRank: number; error: number },
): { kRank: number; vRank: number; error: number }[] {
  const has = pairs.some((p) => p.kRank === chosen.kRank && p.vRank === chosen.vRank);
  return has || !(chosen.error > 0)
    ? pairs
    : [...pairs, { kRank: chosen.kRank, vRank: chosen.vRank, error: chosen.error }];
}

/**
 * Layer maps from measured effects. `offset` 1: each layer's first probe was the layer uncompressed, and
 * the others are told against it, so a map reads "what compressing this layer costs, the rest as it is".
 */
function mapsOf(
  layers: LayerResults,
  pairs: { kRank: number; vRank: number; error: number }[][],
  effects: number[][],
  offset: 0 | 1,
): LayerEffect[] {
  return pairs.map((ps, i) => ({
    layer: layers.profiles[i].layer,
    probes: ps.map((p, j) => ({
      kRank: p.kRank,
      vRank: p.vRank,
      error: p.error,
      effect: effects[i][j + offset] - (offset ? effects[i][0] : 0),
    })),
  }));
}
