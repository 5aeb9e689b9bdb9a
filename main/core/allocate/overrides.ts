/**
 * Hand-set ranks: the review step's "click a layer, set its ranks". Everything comes from the profiles
 * already measured, so this is instant: no model is run.
 *
 * Pins accumulate: layers the given allocation already marks pinned stay at their ranks, and a new override
 * for such a layer replaces its ranks. So the UI can pass either the base allocation with the whole list of
 * overrides, or the latest allocation with just the newest one. Unpinning is a fresh allocateBy… call.
 */
import { badInput } from '../errors.ts';
import { rankSumCapacity } from './bytes.ts';
import type { LayerCandidates } from './candidates.ts';
import { toCandidates, totalWeightOf } from './candidates.ts';
import { choicesOf } from './allocate.ts';
import { paretoFront } from './pareto.ts';
import type { Solution } from './solve.ts';
import { solveByBudget, solveByMemory } from './solve.ts';
import type { LayerChoice, Verdict } from './summary.ts';
import { summarize } from './summary.ts';
import type { Allocation, LayerProfile, OverrideOptions, ProfilePoint, RankOverride } from './types.ts';
import { validateProfiles, validateRank, validateShape } from './validate.ts';
import { resolveWeights } from './weights.ts';

function checkSameLayers(allocation: Allocation, profiles: readonly LayerProfile[]): void {
  const a = allocation.layers.map((l) => l.layer);
  const p = profiles.map((l) => l.layer);
  if (a.length !== p.length || a.some((layer, i) => layer !== p[i])) {
    throw badInput(
      `applyOverrides: the allocation covers layers [${a.join(', ')}] but the profiles cover [${p.join(', ')}]`,
    );
  }
}

function distinctSorted(xs: number[]): string {
  return [...new Set(xs)].sort((x, y) => x - y).join(', ');
}

/** The grid point each override names, by layer; badInput for unknown layers, repeats and off-grid points. */
function resolveOverrides(
  profiles: readonly LayerProfile[],
  overrides: readonly RankOverride[],
  headDim: number,
): Map<number, ProfilePoint> {
  if (!Array.isArray(overrides)) throw badInput('applyOverrides: overrides must be an array');
  const byLayer = new Map(profiles.map((p) => [p.layer, p]));
  const resolved = new Map<number, ProfilePoint>();
  for (const o of overrides) {
    const profile = byLayer.get(o.layer);
    if (!profile) {
      throw badInput(
        `override for layer ${o.layer}: no such layer (profiled: ${[...byLayer.keys()].join(', ')})`,
      );
    }
    if (resolved.has(o.layer)) throw badInput(`override for layer ${o.layer}: given more than once`);
    validateRank(o.kRank, headDim, `override for layer ${o.layer}: kRank`);
    validateRank(o.vRank, headDim, `override for layer ${o.layer}: vRank`);
    const point = profile.points.find((p) => p.kRank === o.kRank && p.vRank === o.vRank);
    if (!point) {
      throw badInput(
        `override for layer ${o.layer}: (kRank ${o.kRank}, vRank ${o.vRank}) is not on the layer's profile grid ` +
          `(kRank in {${distinctSorted(profile.points.map((p) => p.kRank))}}, ` +
          `vRank in {${distinctSorted(profile.points.map((p) => p.vRank))}})`,
      );
    }
    resolved.set(o.layer, point);
  }
  return resolved;
}

/** Is the edited allocation still within its target? Same tests as the solvers, on the summary's sums. */
function judge(edited: Allocation, profiles: readonly LayerProfile[]): Verdict {
  const t = edited.target;
  if (t.kind === 'memory') {
    let ranks = 0;
    for (const l of edited.layers) ranks += l.kRank + l.vRank;
    const cap = rankSumCapacity(t.fraction, profiles.length, edited.shape.headDim);
    return ranks <= cap
      ? { feasible: true }
      : {
          feasible: false,
          reason: `the hand-set ranks put the cache at ${edited.totalBytesPerToken} B/token, above the target of ${t.bytesPerToken} B/token (keeping ${t.fraction} of the KV cache)`,
        };
  }
  if (t.kind === 'budget') {
    // summarize computed weightedError as Σ w E / Σ w in layer order: exactly the quotient withinBudget
    // (candidates.ts) tests in the solvers
    return edited.weightedError <= t.budget
      ? { feasible: true }
      : {
          feasible: false,
          reason: `the hand-set ranks put the weighted mean error at ${edited.weightedError}, above the budget of ${t.budget}`,
        };
  }
  return { feasible: true }; // fixed ranks have no target to miss
}

/**
 * A new allocation with the given layers pinned to the given grid points (their errors from the profile).
 * Without `reallocate` the other layers keep their ranks and `feasible` says whether the target still holds.
 * With it, the other layers are re-solved under the same target and weights, with the pinned layers' cost
 * and error held fixed. Throws badInput for an override that names an unknown layer, repeats a layer, or a
 * point not on that layer's grid, and for `reallocate` on a fixed-rank allocation (it has no target).
 */
export function applyOverrides(
  allocation: Allocation,
  profiles: readonly LayerProfile[],
  overrides: readonly RankOverride[],
  opts: OverrideOptions = {},
): Allocation {
  const shape = allocation.shape;
  validateShape(shape);
  validateProfiles(profiles, shape.headDim, !opts.reallocate);
  checkSameLayers(allocation, profiles);
  const weights = resolveWeights(allocation.weights, profiles.length);
  const fresh = resolveOverrides(profiles, overrides, shape.headDim);

  // Earlier pins stay (at their current ranks) unless overridden again.
  const pins = new Map<number, ProfilePoint>();
  for (const l of allocation.layers) {
    if (l.pinned) pins.set(l.layer, { kRank: l.kRank, vRank: l.vRank, error: l.error });
  }
  for (const [layer, point] of fresh) pins.set(layer, point);
  const isPinned = (layer: number) => pins.has(layer);

  if (!opts.reallocate) {
    const choices: LayerChoice[] = allocation.layers.map((l) => ({
      layer: l.layer,
      point: pins.get(l.layer) ?? { kRank: l.kRank, vRank: l.vRank, error: l.error },
      pinned: isPinned(l.layer),
    }));
    const draft = summarize(choices, shape, weights, allocation.target, allocation.solver, {
      feasible: true,
    });
    return summarize(choices, shape, weights, allocation.target, allocation.solver, judge(draft, profiles));
  }

  const target = allocation.target;
  if (target.kind === 'fixed') {
    throw badInput(
      'applyOverrides: reallocate needs an allocation made for a memory target or an error budget; this one has fixed ranks',
    );
  }
  // A pinned layer is a layer with a single candidate: the solvers then hold its cost and error fixed.
  const candidates: LayerCandidates[] = profiles.map((p, i) => {
    const pin = pins.get(p.layer);
    return toCandidates(pin ? [pin] : paretoFront(p.points), weights[i]);
  });
  const ctx = { shape, pinned: pins.size };
  const solution: Solution =
    target.kind === 'memory'
      ? solveByMemory(
          candidates,
          rankSumCapacity(target.fraction, profiles.length, shape.headDim),
          target.fraction,
          ctx,
          opts,
        )
      : solveByBudget(candidates, totalWeightOf(weights), target.budget, ctx, opts);
  const choices = choicesOf(profiles, candidates, solution.picks, isPinned);
  return summarize(choices, shape, weights, target, solution.solver, solution);
}
