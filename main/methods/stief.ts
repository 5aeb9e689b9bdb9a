/**
 * StiefAttention (methods.md §8): orthonormal bases learned for the decoder layer's output error rather
 * than for the keys or values themselves. Per layer, key bases (pre-RoPE, R1) shared by the KV heads as in
 * the paper, one per KV head, or both ('auto'), and one value basis per head, each a full orthogonal d×d
 * matrix whose leading r columns are the rank-r basis (nested). Training starts from the closed form whose
 * bases measure lowest on the held-out windows (stief-starts.ts) and runs Riemannian Adam on the layer's
 * output loss (stief-train.ts).
 *
 * Model selection on the held-out windows: for every rank, the best iterate (the start included) is kept,
 * and at every (r_K, r_V) of the profile the best of the learned bases (of each key sharing) and every
 * closed form in the key space (EigenAttention, K/V PCA, KQ-SVD, thin keys) is used (stief-select.ts). So
 * the profile is never above any closed form's on those windows, which also measure it (documented in
 * docs/methods.md).
 */
import { isUserError } from '../core/errors.ts';
import { throwIfCancelled } from '../core/progress.ts';
import { defaultProfileRows } from '../runtime/sampled-rows.ts';
import { fitEigen } from './eigen.ts';
import { fitKqsvd } from './kqsvd.ts';
import { fitKsvd } from './ksvd.ts';
import { fitThinKeys } from './thinkeys.ts';
import { standardRankPlan } from './hooks.ts';
import { DEFAULT_TRAIN_WINDOWS, STIEF_DEFAULTS, type StiefSettings } from './stief-settings.ts';
import type { StiefContext } from './stief-context.ts';
import { learnedFit, selectedFit, type RankPair, type StiefFit } from './stief-select.ts';
import { lowest, oneSide, startCandidates, type NamedFit, type StartCandidate } from './stief-starts.ts';
import { keysPhase, schedulePhases, trainBases, VALUES_PHASE } from './stief-train.ts';
import type { CompressionMethod, LayerFit, MethodSettings, TrainContext, TrainedLayer } from './types.ts';
import { methodCard, methodKeySpaces } from '../core/methods.ts';

export type { StiefFit } from './stief-select.ts';

export type { StiefContext, StiefProgress } from './stief-context.ts';

/**
 * The closed forms of this key space, EigenAttention first. One that cannot fit these statistics (KQ-SVD
 * on too few tokens) is left out, not an error: the learned bases and the others still cover every pair.
 */
function closedForms(ctx: StiefContext): NamedFit[] {
  const fits: NamedFit[] = [{ id: 'eigen', fit: fitEigen(ctx.capture, ctx.spec, ctx.keySpace) }];
  for (const [id, fit] of [
    ['ksvd', fitKsvd],
    ['kqsvd', fitKqsvd],
    ['thinkeys', fitThinKeys],
  ] as const) {
    try {
      fits.push({ id, fit: fit(ctx.capture, ctx.spec, ctx.keySpace) });
    } catch (e) {
      if (!isUserError(e)) throw e;
    }
  }
  return fits;
}

/** Every (r_K, r_V) of the grid, keys major. */
const gridPairs = (grid: number[]): RankPair[] =>
  grid.flatMap((kRank) => grid.map((vRank) => ({ kRank, vRank })));

/**
 * Measures every closed form at every grid pair (the selection needs them) and picks each side's start:
 * the candidate with the lowest error summed over the grid's ranks below d, that side alone compressed. A
 * closed form's one-side errors are read from its grid; the other candidates are measured in the same run.
 */
async function closedFormsAndStarts(
  ctx: StiefContext,
  fits: NamedFit[],
  eigenOnly: boolean,
  sharings: readonly ('shared' | 'per-head')[],
) {
  const d = ctx.spec.headDim;
  const pairs = gridPairs(ctx.grid);
  const ranks = ctx.grid.filter((r) => r < d);
  const cands = startCandidates(ctx.capture, ctx.spec, fits, eigenOnly);
  const pairIndex = (kRank: number, vRank: number) =>
    pairs.findIndex((p) => p.kRank === kRank && p.vRank === vRank);
  const fromGrid = (c: StartCandidate) =>
    c.fit !== undefined && ranks.every((r) => pairIndex(r, d) >= 0 && pairIndex(d, r) >= 0);
  const extra: { side: 'keys' | 'values'; c: StartCandidate }[] = [];
  // per-head starts include the shared ones; with shared keys alone the per-head ones are not needed
  const keyCands = sharings.includes('per-head') ? cands.perHead : cands.shared;
  for (const c of keyCands) if (!fromGrid(c)) extra.push({ side: 'keys', c });
  for (const c of cands.values) if (!fromGrid(c)) extra.push({ side: 'values', c });
  const compressions = [
    ...fits.flatMap(({ fit }) => pairs.map((p) => fit.at(p.kRank, p.vRank))),
    ...extra.flatMap(({ side, c }) => oneSide(ctx.keySpace, side, c, ranks, ctx.spec)),
  ];
  const errors = await ctx.meter.errors(compressions);
  const grid = fits.map((_, f) => errors.slice(f * pairs.length, (f + 1) * pairs.length));
  const measured = new Map<StartCandidate, number>();
  extra.forEach(({ c }, i) => {
    const at = fits.length * pairs.length + i * ranks.length;
    measured.set(
      c,
      errors.slice(at, at + ranks.length).reduce((a, b) => a + b, 0),
    );
  });
  const total = (side: 'keys' | 'values') => (c: StartCandidate) =>
    measured.get(c) ??
    ranks.reduce((a, r) => a + grid[c.fit!][side === 'keys' ? pairIndex(r, d) : pairIndex(d, r)], 0);
  return {
    pairs,
    grid,
    starts: {
      shared: lowest(cands.shared, total('keys')),
      perHead: sharings.includes('per-head') ? lowest(cands.perHead, total('keys')) : null,
      values: lowest(cands.values, total('values')),
    },
  };
}

/** Trains a layer's nested key and value bases and selects, per grid pair, against the closed forms. */
export async function trainStief(ctx: StiefContext): Promise<StiefFit> {
  const started = performance.now();
  const settings: StiefSettings = { ...STIEF_DEFAULTS, ...ctx.settings };
  const d = ctx.spec.headDim;
  const fits = closedForms(ctx);
  const sharings = settings.keys === 'auto' ? (['shared', 'per-head'] as const) : [settings.keys];
  const { pairs, grid, starts } = await closedFormsAndStarts(ctx, fits, settings.start === 'eigen', sharings);
  const keyStarts = (sharing: 'shared' | 'per-head') => {
    if (sharing === 'shared') return starts.shared.bases;
    // a shared start trains as one basis per head when the heads are to differ
    const bases = starts.perHead!.bases;
    return Array.from({ length: ctx.spec.numKvHeads }, (_, g) => bases[g] ?? bases[0]);
  };
  const name = (sharing: string) => (settings.keys === 'auto' ? `${sharing} keys` : 'keys');
  const values = starts.values.bases;
  // Sequential values train with keys uncompressed: the same for every key sharing, so trained once.
  const valuesAlone =
    settings.schedule === 'sequential'
      ? await trainBases(ctx, settings, { keys: starts.shared.bases, values }, [VALUES_PHASE])
      : null;
  const learned: LayerFit[] = [];
  let steps = valuesAlone?.steps ?? 0;
  for (const sharing of sharings) {
    const start = { keys: keyStarts(sharing), values };
    const trained = valuesAlone
      ? {
          ...(await trainBases(ctx, settings, start, [keysPhase(name(sharing))])),
          values: valuesAlone.values,
        }
      : await trainBases(ctx, settings, start, schedulePhases(settings.schedule, name(sharing)));
    steps += trained.steps;
    learned.push(learnedFit(ctx.keySpace, ctx.spec.numKvHeads, d, trained));
  }
  throwIfCancelled(ctx.signal);
  const compressions = learned.flatMap((f) => pairs.map((p) => f.at(p.kRank, p.vRank)));
  const errors = await ctx.meter.errors(compressions);
  const learnedErrors = learned.map((_, i) => errors.slice(i * pairs.length, (i + 1) * pairs.length));
  const seconds = (performance.now() - started) / 1000;
  return selectedFit(
    ctx.keySpace,
    [...learned, ...fits.map((f) => f.fit)],
    pairs,
    [...learnedErrors, ...grid],
    { steps, seconds },
  );
}

/**
 * Gradient steps per layer at most: per key sharing, one joint phase or keys then values; sequential values
 * are trained once for every sharing.
 */
function plannedSteps(s: StiefSettings): number {
  const sharings = s.keys === 'auto' ? 2 : 1;
  if (s.schedule === 'sequential') return (sharings + 1) * s.steps;
  return sharings * (s.schedule === 'joint' ? 1 : 2) * s.steps;
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
  return { fit: trained, knownError: trained.knownError, training: trained.training };
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
      steps: plannedSteps({ ...STIEF_DEFAULTS, ...s.stief }),
      // forward + backward ≈ 3 forwards per window; the held-out scoring every evalEvery steps and the final
      // selection against every closed form are budgeted as much again (steps on 128 sampled positions
      // cost less than the estimate's rows, which the selection's grid makes up for)
      forwardsPerStep: 2 * 3,
    },
  }),
  // The job's settings are in the cache key already, but not the defaults they leave out: a layer trained
  // under other defaults must not be taken for one trained under these.
  cacheKey: (s) => ({ stiefTraining: { ...STIEF_DEFAULTS, ...s.stief } }),
};
