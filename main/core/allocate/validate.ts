/**
 * Input checks for the allocator. Everything reachable from a flag or a profile file fails here as
 * badInput (CLI exit 2) with a message naming the valid range, before any solver runs: the solvers then
 * assume finite errors, integer ranks and a non-empty grid.
 */
import { badInput, badSetting } from '../errors.ts';
import type { CacheShape, LayerProfile } from './types.ts';

export function validateShape(shape: CacheShape): void {
  const { kvHeads, headDim, bytesPerElement } = shape ?? ({} as CacheShape);
  if (!Number.isInteger(kvHeads) || kvHeads < 1) {
    throw badInput(`cache shape: kvHeads must be an integer ≥ 1, got ${kvHeads}`);
  }
  if (!Number.isInteger(headDim) || headDim < 1) {
    throw badInput(`cache shape: headDim must be an integer ≥ 1, got ${headDim}`);
  }
  // Not necessarily an integer: a 4-bit cache stores half a byte per element.
  if (typeof bytesPerElement !== 'number' || !Number.isFinite(bytesPerElement) || bytesPerElement <= 0) {
    throw badInput(`cache shape: bytesPerElement must be a finite number > 0, got ${bytesPerElement}`);
  }
}

/** A per-head rank must be an integer in [1, d]. `what` names it in the message ("--k-rank", …). */
/** `setting`: the field path `what` is, when it is a setting the user gave (see RankwiseError). */
export function validateRank(rank: number, headDim: number, what: string, setting?: string): void {
  if (!Number.isInteger(rank) || rank < 1 || rank > headDim) {
    const message = `${what} must be an integer in [1, ${headDim}] (per KV head, at most head_dim), got ${rank}`;
    throw setting === undefined ? badInput(message) : badSetting(setting, message);
  }
}

/**
 * Profiles: at least one layer, distinct layer indices, and per layer distinct grid points with ranks in
 * [1, d] and finite errors ≥ 0. `allowEmpty` admits layers without points (a fixed allocation only looks
 * errors up).
 */
export function validateProfiles(
  profiles: readonly LayerProfile[],
  headDim: number,
  allowEmpty = false,
): void {
  if (!Array.isArray(profiles) || profiles.length === 0) {
    throw badInput('profiles: need at least one layer profile');
  }
  const seenLayers = new Set<number>();
  // one flag per (kRank, vRank) pair, cleared per layer: a string-keyed Set costs seconds on fine grids
  const seenPoints = new Uint8Array((headDim + 1) * (headDim + 1));
  for (const profile of profiles) {
    const { layer, points } = profile;
    if (!Number.isInteger(layer) || layer < 0) {
      throw badInput(`profiles: layer index must be an integer ≥ 0, got ${layer}`);
    }
    if (seenLayers.has(layer)) throw badInput(`profiles: layer ${layer} appears more than once`);
    seenLayers.add(layer);
    if (!Array.isArray(points) || (points.length === 0 && !allowEmpty)) {
      throw badInput(`profile of layer ${layer}: no grid points`);
    }
    seenPoints.fill(0);
    for (const p of points) {
      validateRank(p.kRank, headDim, `profile of layer ${layer}: kRank`);
      validateRank(p.vRank, headDim, `profile of layer ${layer}: vRank`);
      if (typeof p.error !== 'number' || !Number.isFinite(p.error) || p.error < 0) {
        throw badInput(
          `profile of layer ${layer}: the error at (kRank ${p.kRank}, vRank ${p.vRank}) must be a finite number ≥ 0, got ${p.error}`,
        );
      }
      const key = p.kRank * (headDim + 1) + p.vRank;
      if (seenPoints[key]) {
        throw badInput(`profile of layer ${layer}: point (kRank ${p.kRank}, vRank ${p.vRank}) appears twice`);
      }
      seenPoints[key] = 1;
    }
  }
}

export function validateFraction(fraction: number): void {
  if (typeof fraction !== 'number' || !Number.isFinite(fraction) || fraction <= 0 || fraction > 1) {
    throw badSetting(
      'kvFraction',
      `kvFraction must be a number in (0, 1] (the share of the original KV cache to keep), got ${fraction}`,
    );
  }
}

export function validateBudget(budget: number): void {
  if (typeof budget !== 'number' || !Number.isFinite(budget) || budget <= 0) {
    throw badSetting(
      'budget',
      `budget must be a finite number > 0 (a bound on the weighted mean relative layer-output error, e.g. 0.05), got ${budget}`,
    );
  }
}
