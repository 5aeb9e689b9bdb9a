/**
 * One layer not in the job cache: fitted (trained) in every key space, the key space whose keys do better
 * on the held-out windows kept and profiled there, and its ranks chosen when the plan chooses inside the
 * loop.
 */
import type { RankPlan, RankPoint, TrainedLayer } from '../../methods/types.ts';
import type { SampledLayer } from '../../runtime/capture.ts';
import { LayerErrorSweep } from '../../runtime/layer-sweep.ts';
import type { StoredLayer } from '../layer-store.ts';
import type { LayerJob } from './layer-job.ts';
import type { LayerTrainer } from './train.ts';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const pairKey = (p: { kRank: number; vRank: number }) => `${p.kRank},${p.vRank}`;

/**
 * The held-out error at the given pairs, measured together by the sweep; pairs in `have`, and those
 * training already measured (with the same sweep), are taken as they are.
 */
async function measure(
  trained: TrainedLayer,
  sweep: LayerErrorSweep,
  pairs: { kRank: number; vRank: number }[],
  have: RankPoint[] = [],
): Promise<RankPoint[]> {
  const known = new Map(have.map((p) => [pairKey(p), p.error]));
  const points = pairs.map(({ kRank, vRank }) => ({
    kRank,
    vRank,
    error: known.get(pairKey({ kRank, vRank })) ?? trained.knownError?.(kRank, vRank),
  }));
  const missing = points.filter((p) => p.error === undefined);
  const measured = await sweep.errors(missing.map((p) => trained.fit.at(p.kRank, p.vRank)));
  missing.forEach((p, i) => (p.error = measured[i]));
  return points.map((p) => ({ kRank: p.kRank, vRank: p.vRank, error: p.error! }));
}

/**
 * The pairs that tell key spaces apart: the plan's pairs at its largest value rank, where the values are
 * as little compressed as the plan allows and only the keys, which the key space moves, differ.
 */
function keySpacePairs(plan: RankPlan): { kRank: number; vRank: number }[] {
  const top = Math.max(...plan.profile.map((p) => p.vRank));
  return plan.profile.filter((p) => p.vRank === top);
}

/** `sample.sets`: the held-out windows, then the training windows. */
export async function fitLayer(
  job: LayerJob,
  sample: SampledLayer,
  trainer: LayerTrainer,
): Promise<StoredLayer> {
  const { spec, plan } = job;
  const capture = { layer: sample.layer, weights: sample.weights, grams: job.grams[sample.layer] };
  // one measure of held-out errors for everything the layer's fit decides: training's selection, an
  // in-loop rank choice and the profile
  const sweep = new LayerErrorSweep(job.runner, sample.weights, sample.sets[0], {
    rowsPerWindow: job.s.profileTokens,
    seed: job.s.seed,
  });
  // auto: the key space whose errors at the key-only pairs are lower on average; the full profile is
  // then measured in that space alone (with one space there is nothing to choose)
  let best: { trained: TrainedLayer; probe: RankPoint[]; score: number } | null = null;
  for (const keySpace of job.spaces) {
    const trained = await trainer.train({ capture, keySpace, meter: sweep, trainBatches: sample.sets[1] });
    const probe = job.spaces.length > 1 ? await measure(trained, sweep, keySpacePairs(plan)) : [];
    const score = mean(probe.map((p) => p.error));
    if (!best || score < best.score) best = { trained, probe, score };
  }
  const fit = best!.trained.fit;
  const points = await measure(best!.trained, sweep, plan.profile, best!.probe);
  const chosen =
    plan.choose === 'allocator'
      ? null
      : plan.choose === 'fixed'
        ? points[0]
        : await plan.choose({ capture, spec, fit, meter: sweep });
  return { layer: sample.layer, keySpace: fit.keySpace, points, chosen, fit };
}
