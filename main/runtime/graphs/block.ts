/**
 * The decoder block, once, for every graph that runs one (the calibration layer, the gradient graph, the
 * exported decoder): norms, projections, attention core, MLP and residual adds as `ModelSpec.block`
 * describes them. The graphs differ in what surrounds the block (projections, a KV cache, a backward
 * pass), never in how a block computes, so a new architecture that fits the recipe needs no graph code.
 *
 * Pieces that lie downstream of the key and value projections return their backward pass beside their
 * output, built only when asked for (the gradient graph asks; the others never do).
 */
import type { BlockRecipe } from '../../model/types.ts';
import { RankwiseError } from '../../core/errors.ts';
import { attr, type GraphBuilder } from '../onnx/builder.ts';
import { DataType } from '../onnx/proto.ts';
import { linear } from './common.ts';

export type FloatType = typeof DataType.FLOAT | typeof DataType.DOUBLE;

/** A graph under construction and the recipe of the block it computes. */
export interface Block {
  g: GraphBuilder;
  recipe: BlockRecipe;
  /**
   * 17: only operators in their opset-17 form (the exported decoder: ReduceMean takes axes as an
   * attribute, Gelu does not exist). 21: the in-app graphs.
   */
  opset: 17 | 21;
  /** Element type of every float constant (float64 for the gradient graph's checks). */
  elem: FloatType;
  /** Norms and activations from primitives with their backward, rather than fused operators. */
  grad: boolean;
}

export function blockOf(
  g: GraphBuilder,
  recipe: BlockRecipe,
  flavour: Partial<Omit<Block, 'g' | 'recipe'>> = {},
): Block {
  return {
    g,
    recipe,
    opset: flavour.opset ?? 21,
    elem: flavour.elem ?? DataType.FLOAT,
    grad: flavour.grad ?? false,
  };
}

/** What changes a block graph's structure; equal keys can share one session. Windows are fed (masks). */
export function blockKey(recipe: BlockRecipe): string {
  const r = recipe;
  return [
    r.norm.kind,
    r.norm.eps,
    `offset${r.norm.offset}`,
    r.postNorms ? 'postnorm' : '-',
    r.qkNorm ? 'qknorm' : '-',
    r.mlp.gated ? 'gated' : 'plain',
    r.mlp.act,
    `bias${+r.bias.qkv}${+r.bias.o}${+r.bias.mlp}`,
    r.rope ? 'rope' : 'norope',
    `scale${r.queryScale}`,
    `cap${r.attnSoftcap ?? '-'}`,
  ].join(':');
}

/** Graph value names of a norm's weights; `b` only for LayerNorm. */
export interface NormNames {
  w: string;
  b?: string;
}

export interface LinearNames {
  /** Row-major [out, in]. */
  w: string;
  b?: string;
}

/** A decoder block's weights as graph values (inputs or initializers); optional ones per the recipe. */
export interface BlockNames {
  attnNorm: NormNames;
  q: LinearNames;
  k: LinearNames;
  v: LinearNames;
  o: LinearNames;
  /** Per-head norm weights [d] (recipe.qkNorm). */
  qNorm?: string;
  kNorm?: string;
  postAttnNorm?: NormNames;
  mlpNorm: NormNames;
  gate?: LinearNames;
  up: LinearNames;
  down: LinearNames;
  postMlpNorm?: NormNames;
}

/** A value and, on request, the backward map from ∂ℒ/∂out to ∂ℒ/∂(its input). */
export interface Differentiable {
  out: string;
  backward(gOut: string): string;
}

function noBackward(what: string): never {
  throw new RankwiseError('internal', `${what} was built without its backward (grad: false)`);
}

export function scalar(b: Block, v: number): string {
  return b.g.constFloat([v], [], b.elem);
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new RankwiseError('internal', `the block recipe needs ${what}`);
  return v;
}

/** Mean over the last axis, kept: ReduceMean's axes are an input from opset 18, an attribute before. */
function meanLast(b: Block, x: string): string {
  const keep = { keepdims: attr.i(1) };
  if (b.opset < 18) return b.g.op('ReduceMean', [x], { axes: attr.ints([-1]), ...keep });
  return b.g.op('ReduceMean', [x, b.g.constInt64([-1])], keep);
}

/** The gain a norm applies: the stored weight, or 1 + weight where the recipe says so (Gemma). */
function gain(b: Block, w: string): string {
  return b.recipe.norm.offset ? b.g.op('Add', [w, scalar(b, b.recipe.norm.offset)]) : w;
}

/**
 * RMSNorm (x · rsqrt(mean(x²) + eps) · gain) or LayerNorm over the last axis, as the recipe says.
 * Backward: r·(gŵ − mean(gŵ) − x̂·mean(gŵ ⊙ x̂)) with gŵ = G ⊙ gain and r = 1/√(var + eps); RMS has no
 * mean(gŵ) term.
 */
export function norm(b: Block, x: string, n: NormNames, kind = b.recipe.norm.kind): Differentiable {
  const { g } = b;
  const eps = b.recipe.norm.eps;
  const w = gain(b, n.w);
  const layer = kind === 'layer';
  if (layer && !b.grad && b.elem === DataType.FLOAT) {
    // The fused operator where it has a kernel (float32): LayerNormalization exists from opset 17.
    const out = g.op('LayerNormalization', [x, w, need(n.b, 'a LayerNorm bias')], {
      axis: attr.i(-1),
      epsilon: attr.f(eps),
    });
    return { out, backward: () => noBackward('LayerNormalization') };
  }
  const centred = layer ? g.op('Sub', [x, meanLast(b, x)]) : x;
  const ms = meanLast(b, g.op('Mul', [centred, centred]));
  const r = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [ms, scalar(b, eps)])])]);
  const xhat = g.op('Mul', [centred, r]);
  const scaled = g.op('Mul', [xhat, w]);
  const out = layer ? g.op('Add', [scaled, need(n.b, 'a LayerNorm bias')]) : scaled;
  return {
    out,
    backward: (gOut) => {
      const gw = g.op('Mul', [gOut, w]);
      const c = layer ? g.op('Sub', [gw, meanLast(b, gw)]) : gw;
      return g.op('Mul', [r, g.op('Sub', [c, g.op('Mul', [xhat, meanLast(b, g.op('Mul', [gw, xhat]))])])]);
    },
  };
}

/** Per-head RMSNorm (recipe.qkNorm) of x [..., d] with weight [d]: the recipe's eps and gain offset. */
export function headNorm(b: Block, x: string, w: string): string {
  return norm(b, x, { w }, 'rms').out;
}

/**
 * x·Wᵀ + b reshaped to heads by `shape` (a [.., heads, width] shape tensor), then head-normed when the
 * recipe has q/k norms. Rows must be 2-D for Gemm.
 */
export function projectHeads(b: Block, x: string, l: LinearNames, shape: string, normW?: string): string {
  const heads = b.g.op('Reshape', [linear(b.g, x, l.w, l.b), shape]);
  if (!b.recipe.qkNorm) return heads;
  return headNorm(b, heads, need(normW, 'per-head q/k norm weights'));
}

/**
 * erf from primitives in float64 (onnxruntime has no double Erf): erf(x) = 2/√π·e^(−x²)·Σₙ 2ⁿx^(2n+1) /
 * (1·3·…·(2n+1)). Every term is positive, so nothing cancels; 100 terms converge to double precision for
 * |x| ≤ 6, beyond which erf rounds to ±1 and x is clamped.
 */
function erfDouble(b: Block, x: string): string {
  const { g } = b;
  const xc = g.op('Min', [g.op('Max', [x, scalar(b, -6)]), scalar(b, 6)]);
  const twoX2 = g.op('Mul', [g.op('Mul', [xc, xc]), scalar(b, 2)]);
  let term = xc;
  let sum = xc;
  for (let n = 1; n < 100; n++) {
    term = g.op('Mul', [g.op('Mul', [term, twoX2]), scalar(b, 1 / (2 * n + 1))]);
    sum = g.op('Add', [sum, term]);
  }
  const decay = g.op('Exp', [g.op('Neg', [g.op('Mul', [xc, xc])])]);
  return g.op('Mul', [g.op('Mul', [sum, decay]), scalar(b, 2 / Math.sqrt(Math.PI))]);
}

/** The MLP activation of the recipe on z, with act′ for the backward. */
export function activation(b: Block, z: string): Differentiable {
  const { g } = b;
  const act = b.recipe.mlp.act;
  const fused = b.opset >= 20 && !b.grad;
  if (act === 'silu') {
    const sg = g.op('Sigmoid', [z]);
    const out = g.op('Mul', [z, sg]);
    return {
      out,
      // silu′(z) = σ(z)·(1 + z·(1 − σ(z)))
      backward: (gOut) => {
        const d = g.op('Mul', [
          sg,
          g.op('Add', [scalar(b, 1), g.op('Mul', [z, g.op('Sub', [scalar(b, 1), sg])])]),
        ]);
        return g.op('Mul', [gOut, d]);
      },
    };
  }
  if (act === 'gelu_tanh') {
    if (fused) {
      const out = g.op('Gelu', [z], { approximate: attr.s('tanh') });
      return { out, backward: () => noBackward('Gelu') };
    }
    // ½·z·(1 + tanh(c·(z + a·z³))), c = √(2/π), a = 0.044715
    const c = Math.sqrt(2 / Math.PI);
    const a = 0.044715;
    const z2 = g.op('Mul', [z, z]);
    const th = g.op('Tanh', [
      g.op('Mul', [
        g.op('Mul', [z, g.op('Add', [scalar(b, 1), g.op('Mul', [z2, scalar(b, a)])])]),
        scalar(b, c),
      ]),
    ]);
    const half = g.op('Mul', [g.op('Add', [scalar(b, 1), th]), scalar(b, 0.5)]);
    return {
      out: g.op('Mul', [z, half]),
      // ½(1 + t) + ½·z·(1 − t²)·c·(1 + 3a·z²)
      backward: (gOut) => {
        const sech2 = g.op('Sub', [scalar(b, 1), g.op('Mul', [th, th])]);
        const inner = g.op('Mul', [
          g.op('Add', [scalar(b, 1), g.op('Mul', [z2, scalar(b, 3 * a)])]),
          scalar(b, 0.5 * c),
        ]);
        return g.op('Mul', [gOut, g.op('Add', [half, g.op('Mul', [g.op('Mul', [z, sech2]), inner])])]);
      },
    };
  }
  if (fused) return { out: g.op('Gelu', [z]), backward: () => noBackward('Gelu') };
  // Exact GELU z·Φ(z), Φ(z) = ½(1 + erf(z/√2)); Φ′ = φ(z) = e^(−z²/2)/√(2π).
  const scaled = g.op('Mul', [z, scalar(b, Math.SQRT1_2)]);
  const erf = b.elem === DataType.DOUBLE ? erfDouble(b, scaled) : g.op('Erf', [scaled]);
  const cdf = g.op('Mul', [g.op('Add', [scalar(b, 1), erf]), scalar(b, 0.5)]);
  return {
    out: g.op('Mul', [z, cdf]),
    backward: (gOut) => {
      const pdf = g.op('Mul', [
        g.op('Exp', [g.op('Mul', [g.op('Mul', [z, z]), scalar(b, -0.5)])]),
        scalar(b, 1 / Math.sqrt(2 * Math.PI)),
      ]);
      return g.op('Mul', [gOut, g.op('Add', [cdf, g.op('Mul', [z, pdf])])]);
    },
  };
}

/**
 * The MLP on normalised rows h [N, D] → [N, D]: gated, down(act(gate(h)) ⊙ up(h)), or plain,
 * down(act(up(h))); every linear takes its bias when given one. Backward to ∂ℒ/∂h.
 */
export function mlp(b: Block, h: string, w: Pick<BlockNames, 'gate' | 'up' | 'down'>): Differentiable {
  const { g } = b;
  const up = linear(g, h, w.up.w, w.up.b);
  if (b.recipe.mlp.gated) {
    const gateW = need(w.gate, 'gate weights for a gated MLP');
    const a = activation(b, linear(g, h, gateW.w, gateW.b));
    const hidden = g.op('Mul', [a.out, up]);
    return {
      out: linear(g, hidden, w.down.w, w.down.b),
      backward: (gOut) => {
        const gHidden = g.op('MatMul', [gOut, w.down.w]);
        const gGate = a.backward(g.op('Mul', [gHidden, up]));
        const gUp = g.op('Mul', [gHidden, a.out]);
        return g.op('Add', [g.op('MatMul', [gGate, gateW.w]), g.op('MatMul', [gUp, w.up.w])]);
      },
    };
  }
  const a = activation(b, up);
  return {
    out: linear(g, a.out, w.down.w, w.down.b),
    backward: (gOut) => g.op('MatMul', [a.backward(g.op('MatMul', [gOut, w.down.w])), w.up.w]),
  };
}

/** An optional norm on a branch output (recipe.postNorms) before it joins the residual stream. */
function postNorm(b: Block, x: string, n: NormNames | undefined): Differentiable {
  if (!b.recipe.postNorms) return { out: x, backward: (gOut) => gOut };
  return norm(b, x, need(n, 'post-norm weights'));
}

/** h [N, D] → h + post(MLP(norm(h))): the second half of the block. Backward to ∂ℒ/∂h. */
export function mlpResidual(b: Block, h: string, w: BlockNames): Differentiable {
  const { g } = b;
  const n = norm(b, h, w.mlpNorm);
  const m = mlp(b, n.out, w);
  const p = postNorm(b, m.out, w.postMlpNorm);
  return {
    out: g.op('Add', [h, p.out]),
    backward: (gOut) => g.op('Add', [gOut, n.backward(m.backward(p.backward(gOut)))]),
  };
}

/**
 * x [N, D] plus the attention output: post(ctx·W_Oᵀ + b_O) for the merged heads ctx [N, H·w].
 * Backward from ∂ℒ/∂(sum) to ∂ℒ/∂ctx.
 */
export function attentionResidual(
  b: Block,
  x: string,
  ctx: string,
  o: LinearNames,
  post?: NormNames,
): Differentiable {
  const { g } = b;
  const p = postNorm(b, linear(g, ctx, o.w, o.b), post);
  return {
    out: g.op('Add', [x, p.out]),
    backward: (gOut) => g.op('MatMul', [p.backward(gOut), o.w]),
  };
}

export interface Attention {
  /** softmax(S)·V, in the query layout. */
  ctx: string;
  /**
   * ∂ℒ/∂keys in the [.., T, w] layout of `v` and ∂ℒ/∂v, from ∂ℒ/∂ctx, both summed over the group axis 2
   * (queries [B, H_kv, G, T, w], keys and values [B, H_kv, 1, T, w]); `gQueries`, ∂ℒ/∂(scaled queries) in
   * their layout, is built only when read (only thin-space training needs it).
   */
  backward(gCtx: string): { gKeys: string; gValues: string; readonly gQueries: string };
}

/**
 * Queries times the recipe's queryScale (and 1/cap under an attention softcap, whose tanh takes S/cap):
 * scaling q (T·w values per head) is cheaper than scaling the T×T scores. Apply it before the heads are
 * transposed for attend(): onnxruntime fuses a scalar Mul that feeds MatMul directly into FusedMatMul,
 * whose alpha is a float32 attribute, and a float64 graph would lose its precision there.
 */
export function scaleQueries(b: Block, q: string): string {
  return b.g.op('Mul', [q, scalar(b, queryFactor(b))]);
}

/** The factor scaleQueries() multiplies queries by (its backward multiplies by the same). */
export function queryFactor(b: Block): number {
  const cap = b.recipe.attnSoftcap;
  return cap ? b.recipe.queryScale / cap : b.recipe.queryScale;
}

/**
 * Dot-product attention on queries already scaled by scaleQueries(): S = qs·kᵀ, capped to
 * cap·tanh(S) when the recipe has an attention softcap, plus the additive mask, softmax over keys, times
 * v. `kT` holds keys transposed ([.., w, T]); queries, keys and values broadcast over any leading axes
 * (grouped-query heads).
 */
export function attend(b: Block, qs: string, kT: string, v: string, mask: string): Attention {
  const { g } = b;
  const cap = b.recipe.attnSoftcap;
  const raw = g.op('MatMul', [qs, kT]);
  const th = cap ? g.op('Tanh', [raw]) : '';
  const scores = cap ? g.op('Mul', [th, scalar(b, cap)]) : raw;
  const probs = g.op('Softmax', [g.op('Add', [scores, mask])], { axis: attr.i(-1) });
  const ctx = g.op('MatMul', [probs, v]);
  const lastTwo = (x: string) => g.op('Transpose', [x], { perm: attr.ints([0, 1, 2, 4, 3]) });
  const sumGroup = (x: string) => g.op('ReduceSum', [x, g.constInt64([2])], { keepdims: attr.i(1) });
  return {
    ctx,
    backward: (gCtx) => {
      // G_P = G_ctx·Vᵀ; G_S = P ⊙ (G_P − rowsum(G_P ⊙ P)); through the cap: ·cap·(1 − tanh²)
      const gProbs = g.op('MatMul', [gCtx, lastTwo(v)]);
      const rowSum = g.op('ReduceSum', [g.op('Mul', [gProbs, probs]), g.constInt64([-1])], {
        keepdims: attr.i(1),
      });
      let gScores = g.op('Mul', [probs, g.op('Sub', [gProbs, rowSum])]);
      if (cap) {
        const slope = g.op('Mul', [g.op('Sub', [scalar(b, 1), g.op('Mul', [th, th])]), scalar(b, cap)]);
        gScores = g.op('Mul', [gScores, slope]);
      }
      return {
        gKeys: sumGroup(g.op('MatMul', [lastTwo(gScores), qs])),
        gValues: sumGroup(g.op('MatMul', [lastTwo(probs), gCtx])),
        get gQueries() {
          return g.op('MatMul', [gScores, lastTwo(kT)]);
        },
      };
    },
  };
}

/** cap·tanh(logits / cap) when the recipe has a final softcap (Gemma 2), the logits otherwise. */
export function capLogits(b: Block, logits: string): string {
  const cap = b.recipe.finalSoftcap;
  if (!cap) return logits;
  const { g } = b;
  return g.op('Mul', [g.op('Tanh', [g.op('Mul', [logits, scalar(b, 1 / cap)])]), scalar(b, cap)]);
}

/** The token embedding rows times the recipe's embedScale (Gemma's √D), when it is not 1. */
export function scaleEmbedding(b: Block, x: string): string {
  const s = b.recipe.embedScale;
  return s === 1 ? x : b.g.op('Mul', [x, scalar(b, s)]);
}

/**
 * Thin-space keys or queries (R3, runtime/thin-rope.ts): heads x [.., H_kv·group, d] times their KV head's
 * d×r factor ([H_kv, d, r]), reshaped to `heads` (a shape ending in −1: the width r is fed, not built in).
 */
export function thinHeads(
  b: Block,
  x: string,
  factor: string,
  dims: { kvHeads: number; group: number; d: number },
  heads: string,
): string {
  const { g } = b;
  const grouped = g.op('Reshape', [x, g.constInt64([-1, dims.kvHeads, dims.group, dims.d])]);
  return g.op('Reshape', [g.op('MatMul', [grouped, factor]), heads]);
}

/**
 * Thin-space RoPE on [.., r] with tables [.., r] (thin-rope.ts): x·cos + x[swap]·sin. Its backward is the
 * same map with the tables applied first, x[swap] being its own inverse: G·cos + (G·sin)[swap].
 */
export function thinRotate(b: Block, x: string, cos: string, sin: string, swap: string): Differentiable {
  const { g } = b;
  const swapped = (v: string) => g.op('Gather', [v, swap], { axis: attr.i(-1) });
  return {
    out: g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [swapped(x), sin])]),
    backward: (gOut) => g.op('Add', [g.op('Mul', [gOut, cos]), swapped(g.op('Mul', [gOut, sin]))]),
  };
}
