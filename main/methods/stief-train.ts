/**
 * StiefAttention's optimisation of one layer's nested bases (methods.md §8.2): Riemannian Adam on full
 * orthogonal d×d matrices, a rank drawn from the grid each step so every truncation is trained, the loss
 * ℒ = ‖Ŷ − Y‖² / ‖Y‖² differentiated by the hand-built backward graph, and the best held-out iterate kept
 * per rank (the start included).
 */
import { RankwiseError } from '../core/errors.ts';
import { throwIfCancelled } from '../core/progress.ts';
import type { LayerCompression } from '../core/kv.ts';
import { mulberry32 } from '../model/prng.ts';
import { LayerGradient } from '../runtime/layer-grad.ts';
import { matmul } from './kernels.ts';
import { leadingColumns, orthonormalPair, transpose } from './linalg.ts';
import type { StiefSettings } from './stief-settings.ts';
import { cosineLr, orthonormalityError, StiefelAdam } from './stiefel.ts';
import type { StiefContext } from './stief-context.ts';

/** One side's bases: one per KV head, or a single key basis every head shares. */
export interface Bases {
  keys: Float64Array[];
  values: Float64Array[];
}

/** The best held-out iterate per rank r < d of each side, and the start (full rank, and the fallback). */
export interface TrainedBases {
  start: Bases;
  keys: Map<number, Float64Array[]>;
  values: Map<number, Float64Array[]>;
  /** Gradient steps (each one forward and backward pass of the layer over the training windows). */
  steps: number;
}

type Side = 'keys' | 'values';

/** Which sides a phase moves and where each step draws its ranks. */
export interface Phase {
  name: string;
  trains: Side[];
  /** Added to the rank stream's seed, so the phases do not draw the same ranks. */
  seedOffset: number;
}

/**
 * Σ_g (G_g + G_gᵀ)·P_r for M_g = P_r P_rᵀ: the Euclidean gradient of a basis from the ∂ℒ/∂M of the heads
 * that use it (all of them for a shared key basis, one otherwise). Columns beyond r do not act at rank r:
 * their gradient is zero.
 */
export function basisGradient(grads: Float64Array[], pr: Float64Array, d: number, r: number): Float64Array {
  const s = new Float64Array(d * d);
  for (const g of grads)
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) s[i * d + j] += g[i * d + j] + g[j * d + i];
  const gr = matmul(s, d, d, pr, r);
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) out.set(gr.subarray(i * r, (i + 1) * r), i * d);
  return out;
}

/** P_r and P_r P_rᵀ of the leading r columns. */
function projector(p: Float64Array, d: number, r: number): { pr: Float64Array; m: Float64Array } {
  const pr = leadingColumns(p, d, r);
  return { pr, m: matmul(pr, d, r, transpose(pr, d, r), d) };
}

/** The per-head list a compression or a projection input wants: a shared basis repeated. */
const perHead = <T>(xs: T[], heads: number): T[] =>
  xs.length === heads ? xs : Array.from({ length: heads }, () => xs[0]);

/**
 * The layer compressed at (kRank, vRank) by the current bases; a side at full rank is left uncompressed
 * (its projection is the identity).
 */
function compressionAt(ctx: StiefContext, b: Bases, kRank: number, vRank: number): LayerCompression {
  const { headDim: d, numKvHeads: H } = ctx.spec;
  const pairs = (bases: Float64Array[], r: number) =>
    r < d ? perHead(bases, H).map((p) => orthonormalPair(p, d, r)) : null;
  return { keySpace: ctx.keySpace, kRank, vRank, keys: pairs(b.keys, kRank), values: pairs(b.values, vRank) };
}

/**
 * A fresh draw of `rows` positions per training window each step (seeded by the step), so the steps
 * together see every part of the windows at a fraction of a full step's cost; one gradient for every step
 * when the rows cover the windows.
 */
function gradientSource(ctx: StiefContext, settings: StiefSettings): (step: number) => LayerGradient {
  const rows = Math.min(settings.trainRows, ctx.rowsPerWindow ?? Number.POSITIVE_INFINITY);
  const longest = Math.max(0, ...ctx.train.map((b) => b.T));
  const make = (seed: number) =>
    new LayerGradient(ctx.runner, ctx.capture.weights, ctx.train, {
      rowsPerWindow: Number.isFinite(rows) ? rows : undefined,
      seed,
    });
  if (rows >= longest) {
    const every = make(settings.seed);
    return () => every;
  }
  return (step) => make(settings.seed + 1 + step);
}

/** The phases of a schedule ('sequential' and 'alternate': keys, then values; 'joint': one). */
export function schedulePhases(schedule: StiefSettings['schedule'], keys: string): Phase[] {
  if (schedule === 'joint') return [{ name: `${keys}, values`, trains: ['keys', 'values'], seedOffset: 0 }];
  return [keysPhase(keys), VALUES_PHASE];
}

export const keysPhase = (name: string): Phase => ({ name, trains: ['keys'], seedOffset: 0 });
export const VALUES_PHASE: Phase = { name: 'values', trains: ['values'], seedOffset: 104729 };

/**
 * Trains `start` on the kept windows through `phases` in turn, each from where the last left the bases.
 * Under 'sequential' a phase's other side stays uncompressed, under 'alternate' it is compressed at its
 * current bases at a rank drawn from the grid, and a joint phase moves both sides. Each check scores the
 * trained side at every rank with the other uncompressed. A single key basis is shared by every head.
 */
export async function trainBases(
  ctx: StiefContext,
  settings: StiefSettings,
  start: Bases,
  phases: Phase[],
): Promise<TrainedBases> {
  const d = ctx.spec.headDim;
  const ranks = ctx.grid.filter((r) => r < d);
  const best = { keys: new Map<number, Sample>(), values: new Map<number, Sample>() };
  const current: Bases = { keys: start.keys, values: start.values };
  const gradient = gradientSource(ctx, settings);
  let steps = 0;
  for (const phase of phases) {
    const check = (b: Bases) => heldOut(ctx, ranks, phase.trains, b, best);
    await check(current);
    if (ranks.length === 0 || settings.steps === 0) continue;
    const opts = {
      keys: current.keys.map((p) => new StiefelAdam(p.slice(), d, d, { lr: settings.lr })),
      values: current.values.map((p) => new StiefelAdam(p.slice(), d, d, { lr: settings.lr })),
    };
    const rng = mulberry32(settings.seed + 7919 * ctx.capture.layer + phase.seedOffset);
    const draw = drawRanks(ctx.grid, ranks, phase.trains, rng, d, settings.schedule === 'alternate');
    let stale = 0;
    let step = 0;
    while (step < settings.steps) {
      throwIfCancelled(ctx.signal);
      const r = draw();
      const lr = cosineLr(settings.lr, step, settings.steps);
      // the rows depend on the phase and its step alone, so a phase trains alike whatever ran before it
      const loss = await gradientStep(ctx, opts, phase.trains, r, gradient(phase.seedOffset + step), lr);
      step += 1;
      steps += 1;
      current.keys = opts.keys.map((o) => o.p);
      current.values = opts.values.map((o) => o.p);
      ctx.onStep?.({ layer: ctx.capture.layer, phase: phase.name, step, steps: settings.steps, loss });
      if (step % settings.evalEvery === 0 || step === settings.steps) {
        stale = (await check(current)) ? 0 : stale + 1;
        if (stale >= settings.patience) break;
      }
    }
  }
  const bestOf = (m: Map<number, Sample>) => new Map([...m].map(([r, s]) => [r, s.bases]));
  return { start, keys: bestOf(best.keys), values: bestOf(best.values), steps };
}

interface Sample {
  error: number;
  bases: Float64Array[];
}

/**
 * A step's ranks: a trained side's from the grid below d (sequential) or the whole grid (joint, where a
 * side at d is not moved that step but the other learns against it uncompressed); an untrained side's d.
 */
function drawRanks(
  grid: number[],
  ranks: number[],
  trains: Side[],
  rng: () => number,
  d: number,
  alternate = false,
): () => { keys: number; values: number } {
  const pick = (from: number[]) => from[Math.floor(rng() * from.length)];
  if (trains.length === 1) {
    const other = () => (alternate ? pick(grid) : d);
    return () =>
      trains[0] === 'keys' ? { keys: pick(ranks), values: other() } : { keys: other(), values: pick(ranks) };
  }
  return () => {
    for (;;) {
      const r = { keys: pick(grid), values: pick(grid) };
      if (r.keys < d || r.values < d) return r;
    }
  };
}

/** One gradient of ℒ at ranks `r` and an Adam step of every basis of a side below full rank. */
async function gradientStep(
  ctx: StiefContext,
  opts: Record<Side, StiefelAdam[]>,
  trains: Side[],
  r: { keys: number; values: number },
  gradient: LayerGradient,
  lr: number,
): Promise<number> {
  const { headDim: d, numKvHeads: H } = ctx.spec;
  const proj = {
    keys: r.keys < d ? opts.keys.map((o) => projector(o.p, d, r.keys)) : null,
    values: r.values < d ? opts.values.map((o) => projector(o.p, d, r.values)) : null,
  };
  const m = (side: Side) =>
    proj[side]
      ? perHead(
          proj[side].map((p) => p.m),
          H,
        )
      : null;
  const res = await gradient.evaluate(m('keys'), m('values'));
  if (!Number.isFinite(res.loss))
    throw new RankwiseError('internal', `stief: loss became ${res.loss} at layer ${ctx.capture.layer}`);
  const grads = { keys: res.gradK, values: res.gradV };
  for (const side of trains) {
    const p = proj[side];
    if (!p) continue;
    // a shared basis moves along the sum over the heads
    const shared = opts[side].length === 1;
    opts[side].forEach((o, g) => {
      o.step(basisGradient(shared ? grads[side] : [grads[side][g]], p[g].pr, d, r[side]), lr);
      // The retraction keeps PᵀP = I to rounding; a drift means a numerical fault, not a result to use.
      const drift = orthonormalityError(o.p, d, d);
      if (drift > 1e-5)
        throw new RankwiseError('internal', `stief: basis lost orthonormality (${drift.toExponential(1)})`);
    });
  }
  return res.loss;
}

/**
 * Scores the current bases at every rank in one measurement, each trained side at rank r with the other
 * uncompressed, and keeps, per rank and side, the best iterate. True when some rank improved on an earlier
 * check.
 */
async function heldOut(
  ctx: StiefContext,
  ranks: number[],
  trains: Side[],
  b: Bases,
  best: Record<Side, Map<number, Sample>>,
): Promise<boolean> {
  const d = ctx.spec.headDim;
  const at = (side: Side, r: number) =>
    compressionAt(ctx, b, side === 'keys' ? r : d, side === 'values' ? r : d);
  const errors = await ctx.meter.errors(trains.flatMap((side) => ranks.map((r) => at(side, r))));
  let improved = false;
  trains.forEach((side, s) =>
    ranks.forEach((r, i) => {
      const error = errors[s * ranks.length + i];
      const prev = best[side].get(r);
      if (!prev || error < prev.error) {
        best[side].set(r, { error, bases: b[side].map((p) => p.slice()) });
        improved = improved || prev !== undefined;
      }
    }),
  );
  return improved;
}
