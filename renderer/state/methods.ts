/**
 * The five methods as the method step presents them: a plain paragraph for someone new to KV caches,
 * the trade-off, and the engine's own technical summary (main/methods/*.ts `summary`, repeated here
 * because the renderer may import no values from main/). Key spaces mirror each method's `keySpaces`.
 */
import type { MethodId } from '../../main/api/contract.ts';
import type { KeySpaceSetting } from './wizard.ts';

export interface MethodInfo {
  id: MethodId;
  name: string;
  plain: string;
  tradeOff: string;
  technical: string;
  /** Rough relative cost, for ordering expectations: 1 fast … 3 slow. */
  speed: 1 | 2 | 3;
}

export const METHODS: readonly MethodInfo[] = [
  {
    id: 'kqsvd',
    name: 'KQ-SVD',
    plain:
      'Keeps the parts of each key that the model’s queries actually look at. Attention compares every ' +
      'query with every key; KQ-SVD shrinks the keys so that those comparisons change as little as ' +
      'possible, and does the same for values and what the layer makes of them.',
    tradeOff: 'Usually the best quality for the memory saved, at closed-form speed. A good first choice.',
    technical:
      'The optimal low-rank approximation of the attention scores themselves (queries times keys), not of ' +
      'the keys alone, so rank goes to the key directions that queries read. Values get the analogous fit ' +
      'of values times the output projection. Post-RoPE fitting follows the paper; pre-RoPE is often better.',
    speed: 1,
  },
  {
    id: 'ksvd',
    name: 'Per-head PCA (K-SVD)',
    plain:
      'Looks at the keys and values each attention head stores while reading the calibration text and ' +
      'keeps only the directions in which they vary most — like describing a flat cloud of points by its ' +
      'two main axes instead of three coordinates.',
    tradeOff:
      'The simplest and fastest. It does not know which parts of a key matter to the queries, so at the ' +
      'same memory it usually loses more quality than KQ-SVD.',
    technical:
      'Per-head PCA of the cache: every key and value head keeps the directions where its vectors carry ' +
      'the most energy. Fast and simple, but blind to which key directions the queries actually read.',
    speed: 1,
  },
  {
    id: 'eigen',
    name: 'EigenAttention',
    plain:
      'Finds one shared set of main directions for all key heads of a layer, and compresses keys before ' +
      'the position information is mixed in, rebuilding them afterwards. Values get their own directions ' +
      'per head.',
    tradeOff:
      'Exact when everything is kept and simple to reason about; a shared basis needs more room than ' +
      'per-head ones when heads attend to different things.',
    technical:
      'One key basis shared by all heads of a layer, from the principal directions of the pre-RoPE keys, ' +
      'and a value basis per head. Keys are rebuilt before the rotation, so it is exact at full rank; the ' +
      'shared basis needs more rank than per-head bases when heads look at different directions.',
    speed: 1,
  },
  {
    id: 'thinkeys',
    name: 'Thin keys',
    plain:
      'Shrinks the key projection weights themselves, so the keys need no calibration text at all. It ' +
      'saves key memory; values are shrunk with per-head PCA only if you ask for it.',
    tradeOff:
      'Needs no data for keys and is very fast, but is less accurate than the data-driven methods at the ' +
      'same memory, and saves less when values stay full.',
    technical:
      'A truncated SVD of each head’s key weights, with the expansion absorbed into the queries. It needs ' +
      'no calibration data and saves key cache only (values use per-head PCA if you also shrink them).',
    speed: 1,
  },
  {
    id: 'stief',
    name: 'StiefAttention',
    plain:
      'Starts from EigenAttention and then learns better directions by training, judging them by how much ' +
      'the whole layer’s output changes rather than the keys or values alone.',
    tradeOff:
      'The slowest by far (it trains each layer); never worse than EigenAttention on held-out text, and ' +
      'often better at small sizes.',
    technical:
      'Orthonormal bases learned by gradient descent on the manifold of orthonormal matrices, minimising ' +
      'the error of the whole decoder layer’s output, starting from EigenAttention’s bases.',
    speed: 3,
  },
];

export function methodInfo(id: MethodId): MethodInfo {
  return METHODS.find((m) => m.id === id) ?? METHODS[0];
}

/** The key-space choices a method offers on a model: 'auto' plus the spaces it can fit. */
export function keySpacesFor(method: MethodId, rope: boolean): KeySpaceSetting[] {
  if (!rope) return ['auto'];
  if (method === 'ksvd') return ['auto', 'pre-rope', 'post-rope'];
  if (method === 'kqsvd') return ['auto', 'post-rope', 'pre-rope'];
  return ['auto', 'pre-rope'];
}

export const KEY_SPACE_TEXT: Record<KeySpaceSetting, { label: string; help: string }> = {
  auto: {
    label: 'Automatic',
    help: 'Try each space the method allows and keep, per layer, the one with the lower error.',
  },
  'pre-rope': {
    label: 'Before RoPE',
    help:
      'Cache a short code of the key before its position rotation; rebuild the key, then rotate it. ' +
      'Exact when everything is kept.',
  },
  'post-rope': {
    label: 'After RoPE',
    help: 'Project the already rotated keys and queries, as the KQ-SVD paper does.',
  },
  folded: {
    label: 'Folded',
    help: 'Without RoPE the projection folds exactly into the key and query weights.',
  },
};

/** Budget slider positions are decades: 0.001 … 0.5 spread evenly on a log scale. */
export const BUDGET_RANGE = { min: 0.001, max: 0.5 };

export function budgetToSlider(budget: number): number {
  const { min, max } = BUDGET_RANGE;
  const b = Math.min(max, Math.max(min, budget));
  return (Math.log10(b) - Math.log10(min)) / (Math.log10(max) - Math.log10(min));
}

export function sliderToBudget(position: number): number {
  const { min, max } = BUDGET_RANGE;
  const v = 10 ** (Math.log10(min) + position * (Math.log10(max) - Math.log10(min)));
  // two significant digits: what a person would type
  return Number(v.toPrecision(2));
}
