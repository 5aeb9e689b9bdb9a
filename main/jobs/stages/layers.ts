/**
 * The layer loop (ARCHITECTURE.md §3.4): layer by layer, the held-out and training samples of the original
 * model; each layer comes from the job cache or is fitted, profiled and saved to it.
 */
import type { LayerProfile } from '../../core/allocate/index.ts';
import type { LayerFit, RankPoint } from '../../methods/types.ts';
import { progressTracker } from '../../core/progress.ts';
import { layerSamples } from '../../runtime/capture.ts';
import { fitLayer } from './fit-layer.ts';
import type { LayerJob } from './layer-job.ts';
import { LayerTrainer } from './train.ts';

export interface LayerResults {
  fits: LayerFit[];
  profiles: LayerProfile[];
  /** Each layer's ranks when the plan chooses inside the loop (fixed ranks, the method's own); else empty. */
  chosen: RankPoint[];
  /** Training over every layer fitted here (cached layers add nothing); null for a method that does not train. */
  training: { steps: number; seconds: number } | null;
}

export async function fitLayers(
  job: LayerJob,
  windows: { held: Int32Array[]; train: Int32Array[] },
): Promise<LayerResults> {
  const { opts, spec, plan } = job;
  const trainer = new LayerTrainer(job);
  const out: LayerResults = { fits: [], profiles: [], chosen: [], training: trainer.totals };
  const tick = progressTracker('profile', spec.numLayers, opts.onProgress);
  const samples = layerSamples(job.runner, [windows.held, windows.train], { signal: opts.signal });
  for await (const sample of samples) {
    const stored = await opts.layerStore?.load(sample.layer);
    const done = stored ?? (await fitLayer(job, sample, trainer));
    if (!stored) await opts.layerStore?.save(done, plan.ranks, spec.headDim);
    out.fits.push(done.fit);
    out.profiles.push({ layer: sample.layer, points: done.points });
    if (plan.choose !== 'allocator') out.chosen.push(done.chosen!);
    opts.onLayer?.({ layer: sample.layer, keySpace: done.keySpace, points: done.points, cached: !!stored });
    tick(sample.layer);
  }
  return out;
}
