import { cholesky, eigh, matmul, solveTriangular } from './kernels.ts';
import { badSetting, RankwiseError } from '../core/errors.ts';
import type { ModelSpec } from '../model/types.ts';
import { closedFormHooks } from './hooks.ts';
import { columnBlock, identity, leadingColumns, sum, trace, transpose } from './linalg.ts';
import { sideFit } from './orthonormal-fit.ts';
import type { CompressionMethod, LayerCapture, LayerFit } from './types.ts';
import type { FactorPair, KeySpace } from '../core/kv.ts';
import { methodCard, methodKeySpaces } from '../core/methods.ts';

/** The full-rank oblique pair of a KQ-SVD fit, d×d each, columns ordered by singular value. */
export interface KqPair {
  a: Float64Array;
  b: Float64Array;
  /** Singular values σ_i of K·Qᵀ (√ of the eigenvalues of S), descending. */
  sigma: Float64Array;
}

/**
 * KQ-SVD's closed form in its streaming Cholesky form (methods.md §6.1), from Gram matrices only:
 * C_K = R_Kᵀ R_K (R_K = Lᵀ), S = R_K C_Q R_Kᵀ = U Λ Uᵀ, A = R_K⁻¹ U, B = R_Kᵀ U. Truncating A and B to
 * their first r columns gives the Eckart–Young optimum of ‖K Qᵀ − (K A_r)(Q B_r)ᵀ‖_F, and A·Bᵀ = I at
 * full rank. A tiny ridge δ = 1e-9·tr(C_K)/d keeps the Cholesky factor defined when keys are rank-deficient.
 */
export function kqsvdPair(cK: Float64Array, cQ: Float64Array, d: number): KqPair {
  const ridge = (1e-9 * trace(cK, d)) / d || 1e-12;
  const reg = cK.slice();
  for (let i = 0; i < d; i++) reg[i * d + i] += ridge;
  const L = cholesky(reg, d);
  const s = matmul(matmul(transpose(L, d, d), d, d, cQ, d), d, d, L, d);
  const { values, vectors: u } = eigh(s, d);
  return {
    a: solveTriangular(L, d, u, d, { lower: true, transpose: true }),
    b: matmul(L, d, d, u, d),
    sigma: values.map((l) => Math.sqrt(Math.max(0, l))),
  };
}

/**
 * The Cholesky factor of a Gram over too few calibration tokens (fewer than the head dimension, say) can
 * fail even with the ridge: its float32 accumulation leaves eigenvalues below zero. The kernel's own
 * message ("regularise it first") speaks to a programmer; say what the user can change. The calibration
 * file is named by the caller, which knows it.
 */
function pairOrExplain(capture: LayerCapture, side: string, g: number, d: number, fit: () => KqPair): KqPair {
  try {
    return fit();
  } catch (e) {
    const singular = /^cholesky: the matrix is not positive definite/;
    if (!(e instanceof RankwiseError) || e.kind !== 'bad-input' || !singular.test(e.message)) throw e;
    throw badSetting(
      'calibWindows',
      `KQ-SVD cannot fit layer ${capture.layer}'s ${side}s (KV head ${g}): the Gram matrix of the ` +
        `${capture.grams.tokens} calibration tokens it was fitted on is singular (too few tokens, or too ` +
        `little variety, to span the head dimension ${d}); calibrate on more text: more calibWindows, ` +
        'or longer windows',
    );
  }
}

/** Rank-r truncation of a full pair. */
export function truncatePair(p: { a: Float64Array; b: Float64Array }, d: number, r: number): FactorPair {
  return { a: leadingColumns(p.a, d, r), b: leadingColumns(p.b, d, r), rank: r };
}

/**
 * Σ_{h ∈ group g} W_O,h W_O,hᵀ: the value side's "query" Gram. W_O,h (d×D) reads head h's output, so the
 * V–W_O analogue of KQ-SVD approximates V_g·[W_O,h…] with the group's output blocks concatenated (§6.2).
 */
export function outputGram(oWeight: Float32Array, D: number, spec: ModelSpec, g: number): Float64Array {
  const d = spec.headDim;
  const G = spec.numHeads / spec.numKvHeads;
  const grams: Float64Array[] = [];
  for (let j = 0; j < G; j++) {
    // o_proj.weight is [D, H·d]: head h's block is columns h·d…(h+1)·d, i.e. W_O,hᵀ (D×d).
    const block = columnBlock(oWeight, D, spec.numHeads * d, (g * G + j) * d, d);
    grams.push(matmul(transpose(block, D, d), d, D, block, d));
  }
  return sum(grams);
}

export function fitKqsvd(capture: LayerCapture, spec: ModelSpec, keySpace: KeySpace): LayerFit {
  const d = spec.headDim;
  const post = keySpace === 'post-rope';
  const { grams, weights } = capture;
  const keyPairs = grams.kPre.map((_, g) =>
    pairOrExplain(capture, 'key', g, d, () =>
      kqsvdPair(post ? grams.kPost[g] : grams.kPre[g], post ? grams.qPost[g] : grams.qPre[g], d),
    ),
  );
  const valuePairs = grams.v.map((cV, g) =>
    pairOrExplain(capture, 'value', g, d, () =>
      kqsvdPair(cV, outputGram(weights.o.weight, spec.hiddenSize, spec, g), d),
    ),
  );
  return pairFit(keySpace, d, keyPairs, valuePairs);
}

/**
 * The fit over full pairs, built outside fitKqsvd: a closure made there would share its scope with the
 * closures that read the layer's weights and keep every fitted layer's weights alive for the whole job.
 */
function pairFit(keySpace: KeySpace, d: number, keyPairs: KqPair[], valuePairs: KqPair[]): LayerFit {
  return sideFit(
    keySpace,
    (kRank) => keyPairs.map((p) => truncatePair(p, d, kRank)),
    (vRank) => valuePairs.map((p) => truncatePair(p, d, vRank)),
  );
}

/**
 * ‖K E Qᵀ‖²_F with E = I − A·Bᵀ, from the Grams alone: tr(Eᵀ C_K E C_Q). The attention-logit error of a
 * factor pair on the calibration data (KQ-SVD's objective), used by tests and reports.
 */
export function logitError2(cK: Float64Array, cQ: Float64Array, pair: FactorPair, d: number): number {
  const e = identity(d);
  const abT = matmul(pair.a, d, pair.rank, transpose(pair.b, d, pair.rank), d);
  for (let i = 0; i < d * d; i++) e[i] -= abT[i];
  const m = matmul(matmul(matmul(transpose(e, d, d), d, d, cK, d), d, d, e, d), d, d, cQ, d);
  return trace(m, d);
}

export const kqsvd: CompressionMethod = {
  id: 'kqsvd',
  summary: methodCard('kqsvd').summary,
  keySpaces: (spec) => methodKeySpaces('kqsvd', spec.block.rope !== null, spec.block.qkNorm),
  fit: fitKqsvd,
  ...closedFormHooks(fitKqsvd),
};
