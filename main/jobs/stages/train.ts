/**
 * The fit of a layer in one key space, through the method's train hook: training progress with an ETA
 * over the whole job, and the training totals the report gives.
 */
import type { KeySpace } from '../../core/kv.ts';
import type { LayerCapture, TrainedLayer, TrainStep } from '../../methods/types.ts';
import type { HeldoutBatch } from '../../runtime/capture.ts';
import type { HeldoutErrors } from '../../runtime/layer-error.ts';
import type { LayerJob } from './layer-job.ts';

export interface LayerToTrain {
  capture: LayerCapture;
  keySpace: KeySpace;
  meter: HeldoutErrors;
  trainBatches: HeldoutBatch[];
}

export class LayerTrainer {
  /** Optimiser steps and wall time over every layer fitted so far; null for a method that does not train. */
  readonly totals: { steps: number; seconds: number } | null;
  private readonly start = performance.now();
  private stepsDone = 0;

  constructor(private readonly job: LayerJob) {
    this.totals = job.cost.training ? { steps: 0, seconds: 0 } : null;
  }

  async train(layer: LayerToTrain): Promise<TrainedLayer> {
    const { s, opts, spec, runner, method, plan } = this.job;
    const trained = await method.train({
      ...layer,
      spec,
      settings: s,
      plan,
      runner,
      calib: s.calib,
      signal: opts.signal,
      onStep: (p) => this.step(p),
    });
    if (this.totals && trained.training) {
      this.totals.seconds += trained.training.seconds;
      this.totals.steps += trained.training.steps;
    }
    return trained;
  }

  private step(p: TrainStep): void {
    const { spec, spaces, cost, opts } = this.job;
    // ETA over the whole training: every layer trains at most the planned steps in each key space (early
    // stopping only shortens it), at the pace measured so far.
    this.stepsDone += 1;
    const planned = spec.numLayers * spaces.length * (cost.training?.steps ?? 0);
    const elapsed = (performance.now() - this.start) / 1000;
    opts.onProgress?.({
      stage: `train ${p.phase}`,
      layer: p.layer,
      step: p.step,
      done: p.step,
      total: p.steps,
      etaSeconds: (elapsed / this.stepsDone) * Math.max(0, planned - this.stepsDone),
    });
  }
}
