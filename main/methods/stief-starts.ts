/**
 * Where StiefAttention's training starts (methods.md §8.2): the closed form whose bases do best on the
 * held-out windows, per side. Every closed form in the key space is turned into full orthogonal d×d bases
 * whose leading r columns are its rank-r basis (nested, as training needs): EigenAttention's shared key
 * basis and per-head value PCA as they are, K/V PCA's and thin keys' per-head bases as they are, KQ-SVD's
 * oblique pair orthonormalised. A shared key basis needs one basis for every head, so KQ-SVD and thin keys
 * are also fitted to the heads' sums for it (EigenAttention is K/V PCA on the sum already).
 */
import { isUserError } from '../core/errors.ts';
import type { KeySpace, LayerCompression } from '../core/kv.ts';
import type { ModelSpec } from '../model/types.ts';
import { eigh, matmul, qr } from './kernels.ts';
import { kqsvdPair } from './kqsvd.ts';
import { orthonormalPair, rowBlock, sum, transpose } from './linalg.ts';
import type { LayerCapture, LayerFit } from './types.ts';

/** A closed form of the final selection, by method id. */
export interface NamedFit {
  id: 'eigen' | 'ksvd' | 'kqsvd' | 'thinkeys';
  fit: LayerFit;
}

/** Full orthogonal bases training may start one side from: one per KV head, or one for a shared key basis. */
export interface StartCandidate {
  name: string;
  bases: Float64Array[];
  /**
   * The closed form (index into the selection's fits) whose compression at rank r on this side, the other
   * side uncompressed, is exactly this candidate's: its grid already holds these errors.
   */
  fit?: number;
}

export interface StartCandidates {
  /** Shared key bases (one basis each). */
  shared: StartCandidate[];
  /** Per-head key bases; a shared basis is a per-head start too (every head the same). */
  perHead: StartCandidate[];
  values: StartCandidate[];
}

const full = (fit: LayerFit, d: number) => fit.at(d, d);

/**
 * The span of B's leading columns, orthonormalised column by column (so nested): B_r spans the directions
 * the rebuilt keys (or values) lie in. On stories260K that span's keys measure close to K/V PCA's, the span
 * of A (the directions read) 2–3× worse.
 */
function obliqueToOrthonormal(b: Float64Array, d: number): Float64Array {
  return qr(b, d, d).q;
}

/** Thin keys and KQ-SVD for a basis every KV head shares: fitted to the heads' summed statistics. */
function sharedVariants(capture: LayerCapture, spec: ModelSpec): StartCandidate[] {
  const d = spec.headDim;
  const D = spec.hiddenSize;
  const { kPre, qPre } = capture.grams;
  const weightGrams = kPre.map((_, g) => {
    const block = rowBlock(capture.weights.k.weight, D, g * d, d);
    return matmul(block, d, D, transpose(block, d, D), d);
  });
  const out: StartCandidate[] = [{ name: 'thin keys (shared)', bases: [eigh(sum(weightGrams), d).vectors] }];
  try {
    const pair = kqsvdPair(sum(kPre), sum(qPre), d);
    out.push({ name: 'KQ-SVD (shared)', bases: [obliqueToOrthonormal(pair.b, d)] });
  } catch (e) {
    // too few calibration tokens for KQ-SVD: the other starts remain
    if (!isUserError(e)) throw e;
  }
  return out;
}

/**
 * Every start in the key space. `fits` are the selection's closed forms (EigenAttention first); with
 * `eigenOnly`, EigenAttention's bases alone (StiefAttention's start before closed forms were compared).
 */
export function startCandidates(
  capture: LayerCapture,
  spec: ModelSpec,
  fits: NamedFit[],
  eigenOnly: boolean,
): StartCandidates {
  const d = spec.headDim;
  const shared: StartCandidate[] = [];
  const perHead: StartCandidate[] = [];
  const values: StartCandidate[] = [];
  fits.forEach(({ id, fit }, i) => {
    if (eigenOnly && id !== 'eigen') return;
    const c = full(fit, d);
    const keyBases = c.keys!.map((p) => p.a);
    if (id === 'eigen') {
      shared.push({ name: 'EigenAttention', bases: [keyBases[0]], fit: i });
      values.push({ name: 'K/V PCA', bases: c.values!.map((p) => p.a), fit: i });
    } else if (id === 'kqsvd') {
      perHead.push({ name: 'KQ-SVD', bases: c.keys!.map((p) => obliqueToOrthonormal(p.b, d)) });
      values.push({ name: 'KQ-SVD', bases: c.values!.map((p) => obliqueToOrthonormal(p.b, d)) });
    } else {
      perHead.push({ name: id === 'ksvd' ? 'K/V PCA' : 'thin keys', bases: keyBases, fit: i });
    }
  });
  if (!eigenOnly) shared.push(...sharedVariants(capture, spec));
  return { shared, perHead: [...perHead, ...shared], values };
}

/** A candidate's compressions at `ranks` on its side, the other side uncompressed. */
export function oneSide(
  keySpace: KeySpace,
  side: 'keys' | 'values',
  c: StartCandidate,
  ranks: number[],
  spec: ModelSpec,
): LayerCompression[] {
  const d = spec.headDim;
  const heads = Array.from({ length: spec.numKvHeads }, (_, g) => c.bases[c.bases.length === 1 ? 0 : g]);
  return ranks.map((r) => ({
    keySpace,
    kRank: side === 'keys' ? r : d,
    vRank: side === 'values' ? r : d,
    keys: side === 'keys' ? heads.map((b) => orthonormalPair(b, d, r)) : null,
    values: side === 'values' ? heads.map((b) => orthonormalPair(b, d, r)) : null,
  }));
}

/** The candidate whose one-side errors summed over the ranks are lowest (the first on a tie). */
export function lowest(cands: StartCandidate[], total: (c: StartCandidate) => number): StartCandidate {
  let best = cands[0];
  let bestTotal = total(best);
  for (const c of cands.slice(1)) {
    const t = total(c);
    if (t < bestTotal) [best, bestTotal] = [c, t];
  }
  return best;
}
