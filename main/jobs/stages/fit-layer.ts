/**
 * One layer not in the job cache: fitted (trained) in every key space, profiled on the held-out windows,
 * the key space with the lower profile kept, and its ranks chosen when the plan chooses inside the loop.
 */
import type { LayerFit, RankPlan, RankPoint, TrainedLayer } from '../../methods/types.ts';
import type { SampledLayer } from '../../runtime/capture.ts';
import { LayerErrorMeter } from '../../runtime/layer-error.ts';
import type { StoredLayer } from '../layer-store.ts';
import type { LayerJob } from './layer-job.ts';
import type { LayerTrainer } from './train.ts';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The held-out error at every pair of the plan, those training already measured taken as they are. */
async function profile(trained: TrainedLayer, meter: LayerErrorMeter, plan: RankPlan): Promise<RankPoint[]> {
  const points: RankPoint[] = [];
  for (const { kRank, vRank } of plan.profile) {
    const known = trained.knownError?.(kRank, vRank);
    points.push({ kRank, vRank, error: known ?? (await meter.error(trained.fit.at(kRank, vRank))) });
  }
  return points;
}

/** `sample.sets`: the held-out windows, then the training windows. */
export async function fitLayer(
  job: LayerJob,
  sample: SampledLayer,
  trainer: LayerTrainer,
): Promise<StoredLayer> {
  const { spec, plan } = job;
  const capture = { layer: sample.layer, weights: sample.weights, grams: job.grams[sample.layer] };
  const meter = new LayerErrorMeter(job.runner, sample.weights, sample.sets[0]);
  let best: { fit: LayerFit; points: RankPoint[]; score: number } | null = null;
  for (const keySpace of job.spaces) {
    const trained = await trainer.train({ capture, keySpace, meter, trainBatches: sample.sets[1] });
    const points = await profile(trained, meter, plan);
    // auto: the key space whose profile is lower on average over the grid (or at the fixed point).
    const score = mean(points.map((p) => p.error));
    if (!best || score < best.score) best = { fit: trained.fit, points, score };
  }
  const { fit, points } = best!;
  const chosen =
    plan.choose === 'allocator'
      ? null
      : plan.choose === 'fixed'
        ? points[0]
        : await plan.choose({ capture, spec, fit, meter });
  return { layer: sample.layer, keySpace: fit.keySpace, points, chosen, fit };
}
