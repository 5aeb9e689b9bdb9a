/**
 * StiefAttention (methods.md §8): orthonormal bases learned for the decoder layer's output error rather
 * than for the keys or values themselves. Per layer, one key basis shared by the KV heads (pre-RoPE, R1) and
 * one value basis per head, each a full orthogonal d×d matrix whose leading r columns are the rank-r basis
 * (nested), trained by Riemannian Adam from EigenAttention's bases: a rank from the grid is sampled each
 * step, the loss ℒ = ‖Ŷ − Y‖² / ‖Y‖² is differentiated by the hand-built backward graph, and keys and
 * values are trained separately (each with the other side uncompressed), as the paper's reviewers report.
 *
 * Model selection on the held-out windows: for every rank, the best iterate (the EigenAttention start
 * included) is kept, and at every (r_K, r_V) of the profile the best of the learned bases and every closed
 * form in the key space (EigenAttention, K/V PCA, KQ-SVD, thin keys) is used. So the profile is never above
 * any closed form's on those windows, which also measure it (documented in docs/methods.md).
 */
import { matmul } from './kernels.ts';
import { isUserError, RankwiseError } from '../core/errors.ts';
import { mulberry32 } from '../model/prng.ts';
import type { ModelSpec } from '../model/types.ts';
import type { HeldoutBatch } from '../runtime/capture.ts';
import { throwIfCancelled } from '../core/progress.ts';
import { LayerGradient } from '../runtime/layer-grad.ts';
import { defaultProfileRows } from '../runtime/layer-sweep.ts';
import type { HeldoutErrors } from '../runtime/layer-error.ts';
import type { ModelRunner } from '../runtime/runner.ts';
import { fitEigen } from './eigen.ts';
import { fitKqsvd } from './kqsvd.ts';
import { fitKsvd } from './ksvd.ts';
import { fitThinKeys } from './thinkeys.ts';
import { leadingColumns, orthonormalPair, transpose } from './linalg.ts';
import { standardRankPlan } from './hooks.ts';
import { cosineLr, orthonormalityError, StiefelAdam } from './stiefel.ts';
import { DEFAULT_TRAIN_WINDOWS, STIEF_DEFAULTS, type StiefSettings } from './stief-settings.ts';
import type {
  CompressionMethod,
  LayerCapture,
  LayerFit,
  MethodSettings,
  TrainContext,
  TrainedLayer,
} from './types.ts';
import type { KeySpace, LayerCompression } from '../core/kv.ts';
import { methodCard, methodKeySpaces } from '../core/methods.ts';

export interface StiefProgress {
  layer: number;
  phase: 'keys' | 'values';
  step: number;
  steps: number;
  loss: number;
}

export interface StiefContext {
  capture: LayerCapture;
  spec: ModelSpec;
  keySpace: KeySpace;
  runner: ModelRunner;
  /** Kept calibration windows the bases are trained on. */
  train: HeldoutBatch[];
  /** Held-out windows: early stopping, selection, and the profile. */
  meter: HeldoutErrors;
  grid: number[];
  settings?: Partial<StiefSettings>;
  /** Positions of each training window the loss compares (default: every one). */
  rowsPerWindow?: number;
  onStep?: (p: StiefProgress) => void;
  signal?: AbortSignal;
}

export interface StiefFit extends LayerFit {
  /** Held-out errors already measured at every grid point (the pipeline need not measure them again). */
  knownError(kRank: number, vRank: number): number | undefined;
  /** Steps run per phase and wall time. */
  training: { keySteps: number; valueSteps: number; seconds: number };
}

/** Σ_g (G_g + G_gᵀ)·P_r for M_g = P_r P_rᵀ: the Euclidean gradient of a basis from per-head ∂ℒ/∂M. */
function basisGradient(grads: Float64Array[], pr: Float64Array, d: number, r: number): Float64Array {
  const s = new Float64Array(d * d);
  for (const g of grads)
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) s[i * d + j] += g[i * d + j] + g[j * d + i];
  const gr = matmul(s, d, d, pr, r);
  // Columns beyond r do not act at this rank: their gradient is zero.
  const full = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < r; j++) full[i * d + j] = gr[i * r + j];
  return full;
}

const projector = (p: Float64Array, d: number, r: number) => {
  const pr = leadingColumns(p, d, r);
  return { pr, m: matmul(pr, d, r, transpose(pr, d, r), d) };
};

interface Phase {
  /** Current bases (one for keys, one per head for values). */
  bases: Float64Array[];
  best: Map<number, { error: number; bases: Float64Array[] }>;
  steps: number;
}

/** Trains one side (keys or values) from `init`, keeping the best held-out bases per rank. */
async function trainSide(
  ctx: StiefContext,
  side: 'keys' | 'values',
  init: Float64Array[],
  settings: StiefSettings,
): Promise<Phase> {
  const { spec, grid } = ctx;
  const d = spec.headDim;
  const Hkv = spec.numKvHeads;
  const ranks = grid.filter((r) => r < d);
  const compression = (bases: Float64Array[], r: number): LayerCompression => {
    const pairs = Array.from({ length: Hkv }, (_, g) =>
      orthonormalPair(bases[side === 'keys' ? 0 : g], d, r),
    );
    return {
      keySpace: ctx.keySpace,
      kRank: side === 'keys' ? r : d,
      vRank: side === 'values' ? r : d,
      keys: side === 'keys' ? pairs : null,
      values: side === 'values' ? pairs : null,
    };
  };
  const best = new Map<number, { error: number; bases: Float64Array[] }>();
  const evaluate = async (bases: Float64Array[]) => {
    let improved = false;
    // every rank in one measurement: the profile's sweep runs them together
    const errors = await ctx.meter.errors(ranks.map((r) => compression(bases, r)));
    for (const [i, r] of ranks.entries()) {
      const error = errors[i];
      const prev = best.get(r);
      if (!prev || error < prev.error) {
        best.set(r, { error, bases: bases.map((b) => b.slice()) });
        improved = improved || prev !== undefined;
      }
    }
    return improved;
  };
  await evaluate(init);
  if (ranks.length === 0 || settings.steps === 0) return { bases: init, best, steps: 0 };

  const opts = init.map((p) => new StiefelAdam(p.slice(), d, d, { lr: settings.lr }));
  const gradient = new LayerGradient(ctx.runner, ctx.capture.weights, ctx.train, {
    rowsPerWindow: ctx.rowsPerWindow,
    seed: settings.seed,
  });
  const rng = mulberry32(settings.seed + 7919 * ctx.capture.layer + (side === 'keys' ? 0 : 104729));
  let stale = 0;
  let step = 0;
  while (step < settings.steps) {
    throwIfCancelled(ctx.signal);
    const r = ranks[Math.floor(rng() * ranks.length)];
    const proj = opts.map((o) => projector(o.p, d, r));
    const perHead = Array.from({ length: Hkv }, (_, g) => proj[side === 'keys' ? 0 : g].m);
    const res = await gradient.evaluate(side === 'keys' ? perHead : null, side === 'values' ? perHead : null);
    if (!Number.isFinite(res.loss))
      throw new RankwiseError('internal', `stief: loss became ${res.loss} at layer ${ctx.capture.layer}`);
    const lr = cosineLr(settings.lr, step, settings.steps);
    if (side === 'keys') opts[0].step(basisGradient(res.gradK, proj[0].pr, d, r), lr);
    else opts.forEach((o, g) => o.step(basisGradient([res.gradV[g]], proj[g].pr, d, r), lr));
    step += 1;
    // The retraction keeps PᵀP = I to rounding; a drift means a numerical fault, not a result to use.
    for (const o of opts) {
      const drift = orthonormalityError(o.p, d, d);
      if (drift > 1e-5)
        throw new RankwiseError('internal', `stief: basis lost orthonormality (${drift.toExponential(1)})`);
    }
    ctx.onStep?.({ layer: ctx.capture.layer, phase: side, step, steps: settings.steps, loss: res.loss });
    if (step % settings.evalEvery === 0 || step === settings.steps) {
      stale = (await evaluate(opts.map((o) => o.p))) ? 0 : stale + 1;
      if (stale >= settings.patience) break;
    }
  }
  return { bases: opts.map((o) => o.p), best, steps: step };
}

/** Trains a layer's nested key and value bases and measures its profile against EigenAttention's. */
export async function trainStief(ctx: StiefContext): Promise<StiefFit> {
  const start = performance.now();
  const settings = { ...STIEF_DEFAULTS, ...ctx.settings };
  const { spec, grid } = ctx;
  const d = spec.headDim;
  const eigenFit = fitEigen(ctx.capture, spec, ctx.keySpace);
  // EigenAttention's bases, as full orthogonal matrices: the starting point.
  const initK = eigenFit.at(d, d).keys![0].a;
  const initV = eigenFit.at(d, d).values!.map((p) => p.a);
  const keys = await trainSide(ctx, 'keys', [initK], settings);
  const values = await trainSide(ctx, 'values', initV, settings);

  const learned = learnedAt(ctx.keySpace, spec.numKvHeads, d, { keys, values, initK, initV });
  throwIfCancelled(ctx.signal);
  // At every pair, the best of the learned bases and every closed form in this key space, all measured
  // together on the held-out windows: the profile is never above any of theirs.
  const candidates: LayerFit[] = [{ keySpace: ctx.keySpace, at: learned }, eigenFit, ...closedForms(ctx)];
  const pairs = grid.flatMap((kRank) => grid.map((vRank) => ({ kRank, vRank })));
  const compressions = candidates.map((f) => pairs.map((p) => f.at(p.kRank, p.vRank)));
  const errors = await ctx.meter.errors(compressions.flat());
  const choice = new Map<string, Choice>();
  pairs.forEach(({ kRank, vRank }, i) => {
    let pick = 0;
    for (let c = 1; c < candidates.length; c++)
      if (errors[c * pairs.length + i] < errors[pick * pairs.length + i]) pick = c;
    choice.set(`${kRank},${vRank}`, {
      error: errors[pick * pairs.length + i],
      compression: compressions[pick][i],
      pick,
    });
  });
  const seconds = (performance.now() - start) / 1000;
  return selectedFit(ctx.keySpace, candidates, choice, {
    keySteps: keys.steps,
    valueSteps: values.steps,
    seconds,
  });
}

// The two builders below live outside trainStief on purpose: a closure made inside it would share the
// scope that holds the training context (the layer's weights, its training windows) and keep all of it
// alive for as long as the fit is, i.e. for the whole job.

/** The learned compression at (r_K, r_V): the best iterate of each side, the start at full rank. */
function learnedAt(
  keySpace: KeySpace,
  kvHeads: number,
  d: number,
  trained: { keys: Phase; values: Phase; initK: Float64Array; initV: Float64Array[] },
): (kRank: number, vRank: number) => LayerCompression {
  const { keys, values, initK, initV } = trained;
  return (kRank, vRank) => {
    const kb = kRank < d ? keys.best.get(kRank)!.bases[0] : initK;
    const vb = vRank < d ? values.best.get(vRank)!.bases : initV;
    return {
      keySpace,
      kRank,
      vRank,
      keys: Array.from({ length: kvHeads }, () => orthonormalPair(kb, d, kRank)),
      values: vb.map((b) => orthonormalPair(b, d, vRank)),
    };
  };
}

/** One grid pair's pick: the candidate fit (0 = learned) with the lowest held-out error. */
interface Choice {
  error: number;
  compression: LayerCompression;
  pick: number;
}

/**
 * The closed forms besides EigenAttention that fit this key space (K/V PCA, KQ-SVD, thin keys), for the
 * selection. One that cannot fit these statistics (KQ-SVD on too few tokens) is left out, not an error:
 * the learned bases and the others still cover every pair.
 */
function closedForms(ctx: StiefContext): LayerFit[] {
  const fits: LayerFit[] = [];
  for (const fit of [fitKsvd, fitKqsvd, fitThinKeys]) {
    try {
      fits.push(fit(ctx.capture, ctx.spec, ctx.keySpace));
    } catch (e) {
      if (!isUserError(e)) throw e;
    }
  }
  return fits;
}

/** At every grid pair the candidate chosen there, with its error; other pairs get the learned bases. */
function selectedFit(
  keySpace: KeySpace,
  candidates: LayerFit[],
  choice: Map<string, Choice>,
  training: StiefFit['training'],
): StiefFit {
  return {
    keySpace,
    at: (kRank, vRank) => choice.get(`${kRank},${vRank}`)?.compression ?? candidates[0].at(kRank, vRank),
    knownError: (kRank, vRank) => choice.get(`${kRank},${vRank}`)?.error,
    mixture: { fits: candidates, pick: (kRank, vRank) => choice.get(`${kRank},${vRank}`)?.pick ?? 0 },
    training,
  };
}

/** The job's hook: trains on the kept windows for every rank the job serves (full rank included). */
async function trainLayer(ctx: TrainContext): Promise<TrainedLayer> {
  const d = ctx.spec.headDim;
  const trained = await trainStief({
    capture: ctx.capture,
    spec: ctx.spec,
    keySpace: ctx.keySpace,
    runner: ctx.runner,
    train: ctx.trainBatches,
    meter: ctx.meter,
    grid: [...new Set([...ctx.plan.ranks, d])].sort((a, b) => a - b),
    settings: ctx.settings.stief,
    // the loss on as many positions per window as the profile measures: a wide model's steps stay cheap
    rowsPerWindow: ctx.settings.profileTokens ?? defaultProfileRows(ctx.spec),
    signal: ctx.signal,
    onStep: ctx.onStep,
  });
  const { keySteps, valueSteps, seconds } = trained.training;
  return {
    fit: trained,
    knownError: trained.knownError,
    training: { steps: keySteps + valueSteps, seconds },
  };
}

export const stief: CompressionMethod = {
  id: 'stief',
  summary: methodCard('stief').summary,
  keySpaces: (spec) => methodKeySpaces('stief', spec.block.rope !== null, spec.block.qkNorm),
  // Without training data the best available bases are the starting point.
  fit: fitEigen,
  train: trainLayer,
  rankPlan: (spec, s) => standardRankPlan(spec.headDim, s),
  cost: (s: MethodSettings) => ({
    training: {
      windows: Math.max(1, s.stief?.trainWindows ?? DEFAULT_TRAIN_WINDOWS),
      // keys, then values
      steps: 2 * (s.stief?.steps ?? STIEF_DEFAULTS.steps),
      // forward + backward ≈ 3 forwards per window; the held-out scoring every evalEvery steps and the final
      // selection against EigenAttention are budgeted as much again
      forwardsPerStep: 2 * 3,
    },
  }),
  // The training settings are job settings, which the cache key holds whole.
  cacheKey: () => ({}),
};
