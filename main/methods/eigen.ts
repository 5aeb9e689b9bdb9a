import { eigh } from './kernels.ts';
import { sum } from './linalg.ts';
import { closedFormHooks, standardRankPlan } from './hooks.ts';
import { orthonormalFit } from './orthonormal-fit.ts';
import type { ModelSpec } from '../model/types.ts';
import type { CompressionMethod, LayerCapture, LayerFit, MethodSettings, RankPlan } from './types.ts';
import type { KeySpace } from '../core/kv.ts';
import { methodCard, methodKeySpaces } from '../core/methods.ts';

/**
 * EigenAttention's Llama path (methods.md §4): one key basis per layer from the pre-RoPE keys of all KV
 * heads stacked (the eigenvectors of Σ_g K_gᵀK_g), rebuilt then rotated (R1); one value basis per head.
 */
export interface EigenFit extends LayerFit {
  /** Normalised singular values (s/Σs) of the shared key basis and of each head's values. */
  spectra: { keys: Float64Array; values: Float64Array[] };
}

export function fitEigen(capture: LayerCapture, spec: ModelSpec, keySpace: KeySpace): EigenFit {
  const d = spec.headDim;
  const shared = eigh(sum(capture.grams.kPre), d);
  const values = capture.grams.v.map((c) => eigh(c, d));
  const fit = orthonormalFit(
    keySpace,
    d,
    capture.grams.kPre.map(() => shared.vectors),
    values.map((e) => e.vectors),
  );
  return {
    ...fit,
    spectra: { keys: singularShares(shared.values), values: values.map((e) => singularShares(e.values)) },
  };
}

export const eigen: CompressionMethod = {
  id: 'eigen',
  summary: methodCard('eigen').summary,
  keySpaces: (spec) => methodKeySpaces('eigen', spec.block.rope !== null, spec.block.qkNorm),
  fit: fitEigen,
  ...closedFormHooks(fitEigen),
  rankPlan: eigenRankPlan,
  // The sweep picks ranks inside the layer loop, so its budget is part of what a cached layer holds.
  cacheKey: (s) => (sweeps(s) ? { sweepBudget: s.budget } : {}),
};

/** With a budget, EigenAttention picks its ranks by its own sweep unless the knapsack is asked for. */
function sweeps(s: MethodSettings): s is MethodSettings & { budget: number } {
  return s.budget !== undefined && (s.allocator ?? 'sweep') === 'sweep';
}

/**
 * The standard plan, but under a budget each layer's ranks come from the threshold sweep on the spectra of
 * a fit in the key space the profile chose, measured on the same held-out windows.
 */
function eigenRankPlan(spec: ModelSpec, s: MethodSettings): RankPlan {
  const plan = standardRankPlan(spec.headDim, s);
  if (!sweeps(s)) return plan;
  const budget = s.budget;
  return {
    ...plan,
    choose: async ({ capture, fit, meter }) => {
      const eigenFit = fitEigen(capture, spec, fit.keySpace);
      const r = await eigenThresholdSweep(eigenFit, spec.headDim, budget, (k, v) =>
        meter.error(eigenFit.at(k, v)),
      );
      return { kRank: r.kRank, vRank: r.vRank, error: r.error };
    },
  };
}

/** EigenAttention's spectrum: singular values normalised to sum to one, s/Σs (not squared). */
export function singularShares(eigenvalues: Float64Array): Float64Array {
  const s = eigenvalues.map((l) => Math.sqrt(Math.max(0, l)));
  const total = s.reduce((a, b) => a + b, 0);
  return s.map((v) => (total > 0 ? v / total : 0));
}

/** #{j : cumsum(shares)[j] < t}: the rank EigenAttention keeps at threshold t. */
export function rankAtThreshold(shares: Float64Array, t: number): number {
  let c = 0;
  let k = 0;
  for (const s of shares) {
    c += s;
    if (c < t) k += 1;
    else break;
  }
  return k;
}

export interface EigenSweepResult {
  kRank: number;
  vRank: number;
  threshold: number;
  error: number;
  /** Thresholds tried, with the per-head ranks and the measured layer error at each. */
  trace: { threshold: number; kRank: number; vRank: number; error: number }[];
}

/**
 * EigenAttention's per-layer threshold sweep under a layer-output error budget (methods.md §9.1), on the
 * spectra of an `eigen` fit: lower the energy threshold by 0.02 until the error reaches the budget or a
 * rank falls to 45 % of the head dimension, then step back to the last threshold under budget.
 */
export async function eigenThresholdSweep(
  fit: EigenFit,
  d: number,
  budget: number,
  layerError: (kRank: number, vRank: number) => Promise<number>,
): Promise<EigenSweepResult> {
  const ranksAt = (t: number) => ({
    kRank: Math.max(1, rankAtThreshold(fit.spectra.keys, t)),
    vRank: Math.max(1, ...fit.spectra.values.map((s) => rankAtThreshold(s, t))),
  });
  const trace: EigenSweepResult['trace'] = [];
  let t = 1.0;
  let err = 0;
  let r = { kRank: d, vRank: d };
  while (err < budget && r.kRank > 0.45 * d && r.vRank > 0.45 * d) {
    r = ranksAt(t);
    err = await layerError(r.kRank, r.vRank);
    trace.push({ threshold: t, ...r, error: err });
    t -= 0.02;
  }
  // The reference steps back by 0.04 after the loop: the threshold tried just before the last one, which
  // is the last one whose error was under budget. When the very first threshold already misses the
  // budget there is none, and the layer stays at full rank.
  const kept = trace.length >= 2 ? trace[trace.length - 2] : null;
  if (!kept) return { kRank: d, vRank: d, threshold: 1, error: await layerError(d, d), trace };
  return { kRank: kept.kRank, vRank: kept.vRank, threshold: kept.threshold, error: kept.error, trace };
}
