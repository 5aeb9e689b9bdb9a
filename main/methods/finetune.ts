/**
 * Fine-tuning of a fitted layer compression (methods.md §8.2's layer loss, without the orthonormality):
 * the factor pairs (A, B) of the compressed sides are free parameters, trained by Adam on the decoder
 * layer's output loss ℒ = ‖Ŷ − Y‖² / ‖Y‖² over training windows, with M = A·Bᵀ fed to the layer gradient
 * graph (runtime/layer-grad.ts) and the chain rule in finetune-factors.ts. Held-out windows are checked
 * every few steps; the best held-out iterate is returned, the method's own fit when nothing beats it, so
 * fine-tuning never makes a layer worse on those windows.
 *
 * The gradient graph projects keys before RoPE: `pre-rope` and `folded` keys are exactly what it
 * computes. A `post-rope` compression's keys act after RoPE, which it cannot represent, and its values
 * cannot be trained alone either, since their gradient runs through attention weights made by those
 * keys: such a layer is left as fitted, with the reason (its values are trained when its keys are
 * uncompressed, and on a model without RoPE post-RoPE keys are pre-RoPE keys). Thin-space keys
 * (`thin-rope`, R3) run through the gradient graph's thin mode, whose gradient is per factor.
 */
import { RankwiseError } from '../core/errors.ts';
import type { LayerCompression } from '../core/kv.ts';
import { throwIfCancelled } from '../core/progress.ts';
import type { LayerWeights, ModelSpec } from '../model/types.ts';
import type { HeldoutBatch } from '../runtime/capture.ts';
import type { HeldoutErrors } from '../runtime/layer-error.ts';
import { LayerGradient } from '../runtime/layer-grad.ts';
import { LayerErrorSweep } from '../runtime/layer-sweep.ts';
import { defaultProfileRows } from '../runtime/sampled-rows.ts';
import type { ModelRunner } from '../runtime/runner.ts';
import { Adam } from './finetune-adam.ts';
import { TrainableFactors, type Side } from './finetune-factors.ts';
import { FINETUNE_DEFAULTS, type FinetuneSettings } from './finetune-settings.ts';
import { cosineLr } from './stiefel.ts';
import type { TrainStep } from './types.ts';

export { FINETUNE_DEFAULTS, type FinetuneSettings } from './finetune-settings.ts';

export interface FinetuneResult {
  /** The best held-out iterate; the start itself (the same object) when nothing beat it. */
  compression: LayerCompression;
  /** ℒ on the training windows at each step's parameters, before its update. */
  trainLoss: number[];
  /** ℒ on the held-out windows at each check; step 0 is the start. */
  heldout: { step: number; loss: number }[];
  best: { step: number; loss: number };
  stopped: 'steps' | 'no-improvement' | 'diverged' | 'not-trainable';
  /**
   * Set when training diverged (a non-finite loss, gradient or factor, or a held-out loss left above the
   * start's after `patience` checks without improvement) or could not run: what happened and which
   * iterate was kept.
   */
  warning?: string;
  /** Optimiser steps run. */
  steps: number;
  seconds: number;
}

export interface FinetuneArgs {
  runner: ModelRunner;
  weights: LayerWeights;
  layer: number;
  compression: LayerCompression;
  /** Training windows at this layer (the original layer's inputs and outputs). */
  train: HeldoutBatch[];
  /**
   * Held-out windows at this layer, or the job's meter over them, so fine-tuning selects on the measure
   * the profile reports. Its relative error is squared: held-out losses are in ℒ's units.
   */
  heldout: HeldoutBatch[] | HeldoutErrors;
  settings: FinetuneSettings;
  /** Positions of each window the losses compare (default: the profile's, runtime/layer-sweep.ts). */
  rowsPerWindow?: number;
  seed?: number;
  signal?: AbortSignal;
  onStep?: (p: TrainStep) => void;
}

/** Why a compression cannot be fine-tuned on this model, or null when it can. */
export function finetuneObstacle(spec: ModelSpec, c: LayerCompression): string | null {
  if (!c.keys && !c.values) return 'neither keys nor values are compressed, so there is nothing to fine-tune';
  if (c.keySpace === 'post-rope' && c.keys && spec.block.rope) {
    return (
      'its keys are projected after RoPE, which the layer gradient cannot represent (it projects keys ' +
      'before RoPE), and the values cannot be trained alone because their gradient depends on those keys'
    );
  }
  return null;
}

function checkSettings(s: Required<FinetuneSettings>): void {
  const whole = (v: number, min: number) => Number.isInteger(v) && v >= min;
  if (!whole(s.steps, 0) || !whole(s.patience, 1) || !whole(s.checkEvery, 1))
    throw new RankwiseError('internal', `fine-tuning settings out of range: ${JSON.stringify(s)}`);
  if (!(s.lr > 0 && Number.isFinite(s.lr)))
    throw new RankwiseError('internal', `fine-tuning learning rate must be positive, got ${s.lr}`);
}

const allFinite = (a: Float64Array) => a.every(Number.isFinite);

/**
 * A held-out loss counts as above the start only beyond this relative margin: the float32 sums over
 * thousands of positions agree to about 1e-6, so a smaller rise is rounding, not a sign of divergence.
 */
const RISE = 1e-3;
const above = (loss: number, than: number) => loss > than * (1 + RISE);

/**
 * Fine-tunes one layer's compression from `compression` (a method's fit). A pure function of its
 * inputs: the start is not modified, and the factors returned are always finite (a NaN or infinite loss,
 * gradient or parameter stops training with a warning, keeping the best held-out iterate so far).
 */
export async function finetuneLayer(args: FinetuneArgs): Promise<FinetuneResult> {
  const t0 = performance.now();
  // a setting given as undefined takes its default, as one left out does
  const given = Object.fromEntries(Object.entries(args.settings).filter(([, v]) => v !== undefined));
  const settings = { ...FINETUNE_DEFAULTS, ...given } as Required<FinetuneSettings>;
  checkSettings(settings);
  const { runner, weights, layer, compression: start } = args;
  const spec = runner.spec;
  const rowsPerWindow = args.rowsPerWindow ?? defaultProfileRows(spec);
  const seed = args.seed ?? 0;
  const meter = Array.isArray(args.heldout)
    ? new LayerErrorSweep(runner, weights, args.heldout, { rowsPerWindow, seed })
    : args.heldout;
  const heldoutLoss = async (c: LayerCompression) => (await meter.error(c)) ** 2;

  const startLoss = await heldoutLoss(start);
  if (!Number.isFinite(startLoss))
    throw new RankwiseError(
      'internal',
      `fine-tuning: layer ${layer}'s fit has a held-out loss of ${startLoss}`,
    );
  const heldout = [{ step: 0, loss: startLoss }];
  const trainLoss: number[] = [];
  let best: { step: number; loss: number; theta: Float64Array | null } = {
    step: 0,
    loss: startLoss,
    theta: null,
  };
  let factors: TrainableFactors | null = null;
  const result = (stopped: FinetuneResult['stopped'], steps: number, warning?: string): FinetuneResult => ({
    compression: best.theta ? factors!.compression(best.theta) : start,
    trainLoss,
    heldout,
    best: { step: best.step, loss: best.loss },
    stopped,
    ...(warning ? { warning } : {}),
    steps,
    seconds: (performance.now() - t0) / 1000,
  });

  const obstacle = finetuneObstacle(spec, start);
  if (obstacle)
    return result('not-trainable', 0, `layer ${layer} was not fine-tuned: ${obstacle}; its fit is kept`);
  if (settings.steps === 0) return result('steps', 0);
  if (args.train.length === 0) throw new RankwiseError('internal', 'fine-tuning needs training windows');

  const sides: Side[] = ['keys', 'values'];
  factors = new TrainableFactors(start, spec.headDim, sides);
  const theta = factors.theta;
  // thin-space keys (R3) have their own graph, whose gradient is taken at the factors themselves
  const thin = start.keySpace === 'thin-rope' && start.keys !== null;
  const gradient = new LayerGradient(runner, weights, args.train, {
    rowsPerWindow,
    seed,
    keys: thin ? 'thin' : 'pre',
  });
  const evaluate = async (f: TrainableFactors) => {
    const { keys: mK, values: mV } = f.projections();
    return thin ? gradient.evaluateThin(f.compression(), mV) : gradient.evaluate(mK, mV);
  };
  const adam = new Adam(theta.length);
  const kept = () =>
    best.theta
      ? `kept the iterate of step ${best.step} (held-out loss ${best.loss.toPrecision(4)})`
      : `kept the fit it started from (held-out loss ${best.loss.toPrecision(4)})`;
  const diverged = (step: number, what: string) =>
    result('diverged', step, `fine-tuning layer ${layer} diverged at step ${step}: ${what}; ${kept()}`);

  let stale = 0;
  let step = 0;
  while (step < settings.steps) {
    throwIfCancelled(args.signal);
    const res = await evaluate(factors);
    if (!Number.isFinite(res.loss)) return diverged(step, `the training loss became ${res.loss}`);
    const g = factors.gradient(res);
    if (!allFinite(g)) return diverged(step, 'the gradient became non-finite');
    trainLoss.push(res.loss);
    adam.step(theta, g, cosineLr(settings.lr, step, settings.steps), factors.scale);
    step += 1;
    if (!allFinite(theta)) return diverged(step, 'a factor became non-finite');
    args.onStep?.({ layer, phase: 'finetune', step, steps: settings.steps, loss: res.loss });
    if (step % settings.checkEvery !== 0 && step !== settings.steps) continue;

    const loss = await heldoutLoss(factors.compression());
    heldout.push({ step, loss });
    if (!Number.isFinite(loss)) return diverged(step, `the held-out loss became ${loss}`);
    if (loss < best.loss) {
      best = { step, loss, theta: theta.slice() };
      stale = 0;
    } else stale += 1;
    if (stale < settings.patience) continue;
    // Held-out loss climbing back while the training loss falls, but still below the start, is overfitting
    // and ends quietly; above the start, the steps made the fit worse: too large a learning rate.
    if (above(loss, startLoss)) {
      return diverged(
        step,
        `the held-out loss rose to ${loss.toPrecision(4)}, above the start's ${startLoss.toPrecision(4)}, ` +
          `with no improvement in ${stale} checks`,
      );
    }
    return result('no-improvement', step);
  }
  return result('steps', step);
}
