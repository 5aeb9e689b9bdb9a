/**
 * The fine-tune stage (`--finetune-steps N`, methods/finetune.ts): after allocation, when every layer's
 * ranks are known, each compressed layer's factor pairs are trained on the layer's output loss. A second
 * pass over the original model gives each layer its held-out and training windows, as the layer loop's
 * did; a layer is fine-tuned from the allocated compression and keeps its best held-out iterate.
 */
import type { LayerCompression } from '../../core/kv.ts';
import { finetuneLayer, FINETUNE_DEFAULTS } from '../../methods/finetune.ts';
import { layerSamples } from '../../runtime/capture.ts';
import { DEFAULT_TRAIN_WINDOWS } from '../../methods/stief-settings.ts';
import type { FinetuneReport } from '../../contract/report.ts';
import type { LayerJob } from './layer-job.ts';

export async function finetuneLayers(
  job: LayerJob,
  compressions: LayerCompression[],
  windows: { held: Int32Array[]; train: Int32Array[] },
  asked: { steps: number; lr?: number },
): Promise<{ compressions: LayerCompression[]; report: FinetuneReport }> {
  const { spec, runner, s, opts } = job;
  const settings = { ...FINETUNE_DEFAULTS, steps: asked.steps, lr: asked.lr ?? FINETUNE_DEFAULTS.lr };
  const t0 = performance.now();
  const out = [...compressions];
  const report: FinetuneReport = {
    steps: settings.steps,
    lr: settings.lr,
    trainWindows: windows.train.length,
    layers: [],
    seconds: 0,
    warnings: [],
  };
  let stepsDone = 0;
  const planned = spec.numLayers * settings.steps;
  const samples = layerSamples(runner, [windows.held, windows.train], { signal: opts.signal });
  for await (const sample of samples) {
    // a side kept at full rank is the identity: nothing to learn, and leaving it out is exact
    const c = compressions[sample.layer];
    const start = {
      ...c,
      keys: c.kRank < spec.headDim ? c.keys : null,
      values: c.vRank < spec.headDim ? c.values : null,
    };
    if (!start.keys && !start.values) continue;
    const r = await finetuneLayer({
      runner,
      weights: sample.weights,
      layer: sample.layer,
      compression: start,
      train: sample.sets[1],
      heldout: sample.sets[0],
      settings,
      rowsPerWindow: s.profileTokens,
      seed: s.seed,
      signal: opts.signal,
      onStep: (p) => {
        stepsDone += 1;
        const elapsed = (performance.now() - t0) / 1000;
        opts.onProgress?.({
          stage: 'finetune',
          layer: p.layer,
          step: p.step,
          done: p.step,
          total: p.steps,
          etaSeconds: (elapsed / stepsDone) * Math.max(0, planned - stepsDone),
        });
      },
    });
    out[sample.layer] = r.compression;
    report.layers.push({
      layer: sample.layer,
      steps: r.steps,
      stopped: r.stopped,
      bestStep: r.best.step,
      heldoutLoss: { start: r.heldout[0].loss, best: r.best.loss },
      trainLoss:
        r.trainLoss.length > 0 ? { start: r.trainLoss[0], last: r.trainLoss[r.trainLoss.length - 1] } : null,
    });
    if (r.warning) report.warnings.push(`layer ${sample.layer}: ${r.warning}`);
  }
  report.seconds = (performance.now() - t0) / 1000;
  return { compressions: out, report };
}

/**
 * Windows fine-tuning trains on: the first DEFAULT_TRAIN_WINDOWS fitted windows (StiefAttention's count:
 * enough for a stable gradient, cheap per step); it selects on the held-out ones.
 */
export function finetuneWindows(w: { fit: Int32Array[]; held: Int32Array[] }): {
  held: Int32Array[];
  train: Int32Array[];
} {
  return { held: w.held, train: w.fit.slice(0, DEFAULT_TRAIN_WINDOWS) };
}
