/**
 * The method catalogue: every compression method's id, name, summaries and the key spaces it can fit.
 * The engine's methods (main/methods/*.ts) take their `summary` and `keySpaces` from here, and the
 * wizard's method step shows the same words, so the two never describe a method differently.
 */
import type { KeySpace, MethodId } from './kv.ts';

export interface MethodCard {
  id: MethodId;
  name: string;
  /** The engine's technical summary: what is fitted and how (CLI help, the wizard's "technical" text). */
  summary: string;
  /** For someone new to KV caches. */
  plain: string;
  tradeOff: string;
  /** Rough relative cost, for ordering expectations: 1 fast … 3 slow. */
  speed: 1 | 2 | 3;
  /** Key spaces the method fits on a model with RoPE, its default first. Without RoPE, every method folds. */
  ropeKeySpaces: readonly KeySpace[];
  /**
   * Further key spaces on a model with RoPE that a job gets only by asking (never under `auto`): thin keys'
   * thin-space attention, which is inexact until fine-tuned.
   */
  askedKeySpaces?: readonly KeySpace[];
}

/** In the order the wizard offers them: the usual best first. */
export const METHOD_CATALOGUE: readonly MethodCard[] = [
  {
    id: 'kqsvd',
    name: 'KQ-SVD',
    summary:
      'The optimal low-rank approximation of the attention scores themselves (queries times keys), not of ' +
      'the keys alone, so rank goes to the key directions that queries read. Values get the analogous fit ' +
      'of values times the output projection. Post-RoPE fitting follows the paper; pre-RoPE is often better.',
    plain:
      'Keeps the parts of each key that the model’s queries actually look at. Attention compares every ' +
      'query with every key; KQ-SVD shrinks the keys so that those comparisons change as little as ' +
      'possible, and does the same for values and what the layer makes of them.',
    tradeOff: 'Usually the best quality for the memory saved, at closed-form speed. A good first choice.',
    speed: 1,
    ropeKeySpaces: ['post-rope', 'pre-rope'],
  },
  {
    id: 'ksvd',
    name: 'Per-head PCA (K-SVD)',
    summary:
      'Per-head PCA of the cache: every key and value head keeps the directions where its vectors carry ' +
      'the most energy. Fast and simple, but blind to which key directions the queries actually read.',
    plain:
      'Looks at the keys and values each attention head stores while reading the calibration text and ' +
      'keeps only the directions in which they vary most — like describing a flat cloud of points by its ' +
      'two main axes instead of three coordinates.',
    tradeOff:
      'The simplest and fastest. It does not know which parts of a key matter to the queries, so at the ' +
      'same memory it usually loses more quality than KQ-SVD.',
    speed: 1,
    ropeKeySpaces: ['pre-rope', 'post-rope'],
  },
  {
    id: 'eigen',
    name: 'EigenAttention',
    summary:
      'One key basis shared by all heads of a layer, from the principal directions of the pre-RoPE keys, ' +
      'and a value basis per head. Keys are rebuilt before the rotation, so it is exact at full rank; the ' +
      'shared basis needs more rank than per-head bases when heads look at different directions.',
    plain:
      'Finds one shared set of main directions for all key heads of a layer, and compresses keys before ' +
      'the position information is mixed in, rebuilding them afterwards. Values get their own directions ' +
      'per head.',
    tradeOff:
      'Exact when everything is kept and simple to reason about; a shared basis needs more room than ' +
      'per-head ones when heads attend to different things.',
    speed: 1,
    ropeKeySpaces: ['pre-rope'],
  },
  {
    id: 'thinkeys',
    name: 'Thin keys',
    summary:
      'A truncated SVD of each head’s key weights, with the expansion absorbed into the queries. It needs ' +
      'no calibration data and saves key cache only (values use per-head PCA if you also shrink them).',
    plain:
      'Shrinks the key projection weights themselves, so the keys need no calibration text at all. It ' +
      'saves key memory; values are shrunk with per-head PCA only if you ask for it.',
    tradeOff:
      'Needs no data for keys and is very fast, but is less accurate than the data-driven methods at the ' +
      'same memory, and saves less when values stay full.',
    speed: 1,
    ropeKeySpaces: ['pre-rope'],
    askedKeySpaces: ['thin-rope'],
  },
  {
    id: 'stief',
    name: 'StiefAttention',
    summary:
      'Orthonormal bases learned by gradient descent on the manifold of orthonormal matrices, minimising ' +
      'the error of the whole decoder layer’s output, starting from the best closed-form bases.',
    plain:
      'Starts from the best of the other methods and then learns better directions by training, judging them by how much ' +
      'the whole layer’s output changes rather than the keys or values alone.',
    tradeOff:
      'The slowest by far (it trains each layer); never worse than the closed-form methods on held-out text, and ' +
      'often better at small sizes.',
    speed: 3,
    ropeKeySpaces: ['pre-rope'],
  },
];

/** The catalogue entry of a method. */
export function methodCard(id: MethodId): MethodCard {
  const card = METHOD_CATALOGUE.find((m) => m.id === id);
  if (!card) throw new Error(`no method "${String(id)}" in the catalogue`);
  return card;
}

/**
 * Why a model cannot take keys compressed in `space`, whichever the method; null when it can. `rope`: the
 * model rotates its keys; `qkNorm`: it normalises each query and key head between the projection and RoPE
 * (Qwen3).
 */
export function keySpaceObstacle(space: KeySpace, rope: boolean, qkNorm = false): string | null {
  if (!rope && space !== 'folded') return 'without RoPE every key basis folds into the projections';
  if (rope && space === 'folded') return 'folded keys need a model without RoPE';
  // Pre-RoPE and folded bases are exported inside k_proj and q_proj; a norm of whole heads sits between
  // those projections and the cache, so only post-RoPE bases (kept beside the projections) survive export.
  if (qkNorm && space !== 'post-rope') {
    return (
      'per-head q/k norms sit between the q/k projections and RoPE, ' +
      `so a ${space} key basis cannot be folded into k_proj`
    );
  }
  return null;
}

/**
 * Key spaces a method can fit on a model (see keySpaceObstacle for `rope` and `qkNorm`); the first is its
 * default. Empty when the model allows none of the method's.
 */
export function methodKeySpaces(id: MethodId, rope: boolean, qkNorm = false): KeySpace[] {
  const spaces: readonly KeySpace[] = rope ? methodCard(id).ropeKeySpaces : ['folded'];
  return spaces.filter((space) => keySpaceObstacle(space, rope, qkNorm) === null);
}

/** The key spaces a job may ask a method for on a model: `methodKeySpaces`, then the asked-only ones. */
export function askableKeySpaces(id: MethodId, rope: boolean, qkNorm = false): KeySpace[] {
  const asked = rope ? (methodCard(id).askedKeySpaces ?? []) : [];
  return [
    ...methodKeySpaces(id, rope, qkNorm),
    ...asked.filter((space) => keySpaceObstacle(space, rope, qkNorm) === null),
  ];
}
