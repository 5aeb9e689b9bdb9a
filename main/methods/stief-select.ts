/**
 * StiefAttention's model selection on the held-out windows: at every grid pair, the candidate fit (the
 * learned bases of each key sharing, every closed form in the key space) with the lowest error, all
 * measured by the profile's own meter. So the profile is never above any closed form's on those windows.
 *
 * The builders here live outside trainStief on purpose: a closure made inside it would share the scope
 * that holds the training context (the layer's weights, its training windows) and keep all of it alive
 * for as long as the fit is, i.e. for the whole job.
 */
import type { KeySpace, LayerCompression } from '../core/kv.ts';
import { orthonormalPair } from './linalg.ts';
import { sideFit } from './orthonormal-fit.ts';
import type { TrainedBases } from './stief-train.ts';
import type { LayerFit } from './types.ts';

export interface StiefFit extends LayerFit {
  /** Held-out errors already measured at every grid point (the pipeline need not measure them again). */
  knownError(kRank: number, vRank: number): number | undefined;
  /** Gradient steps (layer forward and backward passes) over every training run, and the wall time. */
  training: { steps: number; seconds: number };
}

export interface RankPair {
  kRank: number;
  vRank: number;
}

/** The learned compression at (r_K, r_V): each side's best iterate at its rank, the start at full rank. */
export function learnedFit(keySpace: KeySpace, kvHeads: number, d: number, t: TrainedBases): LayerFit {
  const heads = (bases: Float64Array[]) =>
    Array.from({ length: kvHeads }, (_, g) => bases[bases.length === 1 ? 0 : g]);
  return sideFit(
    keySpace,
    (kRank) =>
      heads((kRank < d && t.keys.get(kRank)) || t.start.keys).map((b) => orthonormalPair(b, d, kRank)),
    (vRank) =>
      heads((vRank < d && t.values.get(vRank)) || t.start.values).map((b) => orthonormalPair(b, d, vRank)),
  );
}

/** One grid pair's pick: the candidate (index into the fits) with the lowest held-out error. */
interface Choice {
  error: number;
  compression: LayerCompression;
  pick: number;
}

/**
 * The selected fit from every candidate's errors at `pairs` (`errors[c][i]`: candidate c at pairs[i]). A
 * tie keeps the earlier candidate, so the learned bases (first) are kept where they are as good.
 */
export function selectedFit(
  keySpace: KeySpace,
  candidates: LayerFit[],
  pairs: RankPair[],
  errors: number[][],
  training: StiefFit['training'],
): StiefFit {
  const choice = new Map<string, Choice>();
  pairs.forEach(({ kRank, vRank }, i) => {
    let pick = 0;
    for (let c = 1; c < candidates.length; c++) if (errors[c][i] < errors[pick][i]) pick = c;
    choice.set(`${kRank},${vRank}`, {
      error: errors[pick][i],
      compression: candidates[pick].at(kRank, vRank),
      pick,
    });
  });
  return {
    keySpace,
    at: (kRank, vRank) => choice.get(`${kRank},${vRank}`)?.compression ?? candidates[0].at(kRank, vRank),
    knownError: (kRank, vRank) => choice.get(`${kRank},${vRank}`)?.error,
    mixture: { fits: candidates, pick: (kRank, vRank) => choice.get(`${kRank},${vRank}`)?.pick ?? 0 },
    training,
  };
}
