/**
 * A slow, obviously-correct forward pass in float64 plain TypeScript, for tests only: token by token,
 * head by head, following the HF definitions literally and reading only `spec.block` (the recipe):
 * RMSNorm or LayerNorm (gain w + offset), optional per-head q/k RMSNorm, rotate_half RoPE from the
 * resolved inverse frequencies and attention factor, repeat_kv GQA, query scale, attention soft-capping,
 * causal masks with per-layer sliding windows, post-norms, gated (act(gate)·up) or plain MLPs with
 * silu / exact gelu / tanh gelu, biases, embedding scale, learned positions (GPT-2), final soft-capping.
 * It shares nothing with the ONNX graphs.
 */
import type {
  BlockRecipe,
  EmbeddingWeights,
  LayerWeights,
  Linear,
  ModelSpec,
  Norm,
  RopeRecipe,
} from '../../main/model/types.ts';

export type Vec = Float64Array;

function applyLinear(l: Linear, x: Vec): Vec {
  const y = new Float64Array(l.out);
  for (let o = 0; o < l.out; o++) {
    let s = l.bias ? l.bias[o] : 0;
    for (let i = 0; i < l.in; i++) s += l.weight[o * l.in + i] * x[i];
    y[o] = s;
  }
  return y;
}

/** The block's norm kind over a vector of any width (the residual stream, or one head for q/k norms). */
function normalize(block: BlockRecipe, n: Norm, x: Vec, kind = block.norm.kind): Vec {
  const D = x.length;
  const { eps, offset } = block.norm;
  const y = new Float64Array(D);
  if (n.weight.length !== D) throw new Error(`norm of ${n.weight.length} weights on a vector of ${D}`);
  if (kind === 'rms') {
    let ms = 0;
    for (let i = 0; i < D; i++) ms += x[i] * x[i];
    const inv = 1 / Math.sqrt(ms / D + eps);
    for (let i = 0; i < D; i++) y[i] = x[i] * inv * (n.weight[i] + offset);
  } else {
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x[i];
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / D + eps);
    for (let i = 0; i < D; i++)
      y[i] = (x[i] - mean) * inv * (n.weight[i] + offset) + (n.bias ? n.bias[i] : 0);
  }
  return y;
}

/** rotate_half RoPE of one head vector at position t: pair (i, i + d/2) turns by t·invFreq[i], scaled. */
export function ropeWith(x: Vec, t: number, rope: RopeRecipe): Vec {
  const d = x.length;
  const half = d / 2;
  if (rope.invFreq.length !== half)
    throw new Error(`RoPE has ${rope.invFreq.length} pairs, the head ${half}`);
  const f = rope.attentionFactor;
  const y = new Float64Array(d);
  for (let i = 0; i < half; i++) {
    const a = t * rope.invFreq[i];
    const c = Math.cos(a) * f;
    const s = Math.sin(a) * f;
    y[i] = x[i] * c - x[i + half] * s;
    y[i + half] = x[i + half] * c + x[i] * s;
  }
  return y;
}

/** rotate_half RoPE on one head vector at position t: pairs (i, i + d/2) rotate by t·θ^(−2i/d). */
export function ropeVec(x: Vec, t: number, theta: number): Vec {
  const d = x.length;
  const invFreq = Array.from({ length: d / 2 }, (_, i) => Math.pow(theta, (-2 * i) / d));
  return ropeWith(x, t, { theta, invFreq, attentionFactor: 1, scaling: 'default' });
}

function erf(x: number): number {
  // exact gelu needs erf to float64 accuracy (JS has none): the series near 0, the continued fraction
  // of erfc in the tail, each where it converges fast
  const ax = Math.abs(x);
  let r: number;
  if (ax < 2.5) {
    // Maclaurin series: erf x = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 60; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc x = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated from the back
    let f = 0;
    for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
    r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  }
  return x < 0 ? -r : r;
}

const ACT: Record<BlockRecipe['mlp']['act'], (x: number) => number> = {
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
};

export function activation(act: BlockRecipe['mlp']['act'], x: number): number {
  return ACT[act](x);
}

/** Per-token, per-head q, k (pre- and post-RoPE) and v of a layer's input rows. */
export interface HeadVectors {
  qPre: Vec[][];
  kPre: Vec[][];
  q: Vec[][];
  k: Vec[][];
  v: Vec[][];
}

/** q and k are taken after the q/k norms (when the recipe has them): the vectors RoPE turns. */
export function referenceHeads(spec: ModelSpec, w: LayerWeights, xs: Vec[]): HeadVectors {
  const { numHeads: H, numKvHeads: Hkv } = spec;
  const block = spec.block;
  // Head widths come from the weights, so folded (narrower) layers run through the same code.
  const dq = w.q.out / H;
  const dk = w.k.out / Hkv;
  const dv = w.v.out / Hkv;
  if (dq !== dk) throw new Error(`query heads of ${dq} against key heads of ${dk}`);
  const r: HeadVectors = { qPre: [], kPre: [], q: [], k: [], v: [] };
  xs.forEach((x, t) => {
    const h = normalize(block, w.attnNorm, x);
    const q = applyLinear(w.q, h);
    const k = applyLinear(w.k, h);
    const v = applyLinear(w.v, h);
    const head = (a: Vec, j: number, n: number) => a.slice(j * n, (j + 1) * n);
    const qkNorm = (a: Vec, n: Norm | undefined) => {
      if (!block.qkNorm) return a;
      if (!n) throw new Error('the recipe has q/k norms but the layer has no weights for them');
      return normalize(block, n, a, 'rms');
    };
    const rot = (a: Vec) => (block.rope ? ropeWith(a, t, block.rope) : a);
    r.qPre.push(Array.from({ length: H }, (_, j) => qkNorm(head(q, j, dq), w.qNorm)));
    r.kPre.push(Array.from({ length: Hkv }, (_, j) => qkNorm(head(k, j, dk), w.kNorm)));
    r.q.push(r.qPre[t].map(rot));
    r.k.push(r.kPre[t].map(rot));
    r.v.push(Array.from({ length: Hkv }, (_, j) => head(v, j, dv)));
  });
  return r;
}

/** The window of `layer`; without a layer, only when every layer has the same one. */
function windowOf(block: BlockRecipe, layer: number | undefined): number | null {
  if (layer !== undefined) return block.slidingWindow[layer] ?? null;
  const w = block.slidingWindow;
  if (w.some((x) => x !== w[0])) throw new Error('layers differ in their sliding window: pass the layer');
  return w[0] ?? null;
}

/**
 * One decoder layer over a whole sequence of hidden rows (causal). `edit.key`/`edit.value`, when given,
 * replace each key and value vector of KV head g, to model compressed layers literally. `edit.layer`
 * names the layer, for recipes whose layers differ (sliding windows).
 */
export function referenceLayer(
  spec: ModelSpec,
  w: LayerWeights,
  xs: Vec[],
  edit: {
    /** The key attention uses, given the pre- and post-RoPE key of KV head g at position t. */
    key?: (k: { pre: Vec; post: Vec }, g: number, t: number) => Vec;
    /** The query attention uses, given the pre- and post-RoPE query of head h at position t. */
    query?: (q: { pre: Vec; post: Vec }, h: number, t: number) => Vec;
    value?: (v: Vec, g: number) => Vec;
    layer?: number;
  } = {},
): Vec[] {
  const { numHeads: H, numKvHeads: Hkv } = spec;
  const block = spec.block;
  const G = H / Hkv;
  const T = xs.length;
  const dv = w.v.out / Hkv;
  const window = windowOf(block, edit.layer);
  const cap = block.attnSoftcap;
  const heads = referenceHeads(spec, w, xs);
  const qs = edit.query
    ? heads.q.map((row, t) => row.map((post, h) => edit.query!({ pre: heads.qPre[t][h], post }, h, t)))
    : heads.q;
  const ks = edit.key
    ? heads.k.map((row, t) => row.map((post, g) => edit.key!({ pre: heads.kPre[t][g], post }, g, t)))
    : heads.k;
  const vs = edit.value ? heads.v.map((row) => row.map((v, g) => edit.value!(v, g))) : heads.v;
  const out: Vec[] = [];
  for (let t = 0; t < T; t++) {
    const first = window === null ? 0 : Math.max(0, t - window + 1);
    const concat = new Float64Array(H * dv);
    for (let hq = 0; hq < H; hq++) {
      const g = Math.floor(hq / G);
      const scores = new Float64Array(t + 1);
      let max = -Infinity;
      for (let s = first; s <= t; s++) {
        const kv = ks[s][g];
        let dot = 0;
        for (let i = 0; i < kv.length; i++) dot += qs[t][hq][i] * kv[i];
        // Always the recipe's scale: folding narrows heads but keeps it (methods.md §2.1).
        let score = dot * block.queryScale;
        if (cap !== null) score = cap * Math.tanh(score / cap);
        scores[s] = score;
        max = Math.max(max, score);
      }
      let z = 0;
      for (let s = first; s <= t; s++) z += Math.exp(scores[s] - max);
      for (let s = first; s <= t; s++) {
        const p = Math.exp(scores[s] - max) / z;
        for (let i = 0; i < dv; i++) concat[hq * dv + i] += p * vs[s][g][i];
      }
    }
    let attn = applyLinear(w.o, concat);
    if (block.postNorms) attn = normalize(block, required(w.postAttnNorm, 'postAttnNorm'), attn);
    const h = xs[t].map((x, i) => x + attn[i]);
    const n2 = normalize(block, w.mlpNorm, h);
    const act = ACT[block.mlp.act];
    let hidden: Vec;
    if (block.mlp.gated) {
      const gate = applyLinear(required(w.gate, 'gate'), n2);
      const up = applyLinear(w.up, n2);
      hidden = gate.map((g, i) => act(g) * up[i]);
    } else {
      hidden = applyLinear(w.up, n2).map(act);
    }
    let down = applyLinear(w.down, hidden);
    if (block.postNorms) down = normalize(block, required(w.postMlpNorm, 'postMlpNorm'), down);
    out.push(h.map((x, i) => x + down[i]));
  }
  return out;
}

function required<T>(x: T | undefined, what: string): T {
  if (x === undefined) throw new Error(`the recipe needs ${what}, which the layer lacks`);
  return x;
}

/**
 * Logits [T][V] for one token sequence starting at position 0, and the residual stream's RMS after each
 * layer (tests watch it for blow-up in synthetic models).
 */
export function referenceForward(
  spec: ModelSpec,
  emb: EmbeddingWeights,
  layers: LayerWeights[],
  ids: ArrayLike<number>,
): { logits: Vec[]; residualRms: number[] } {
  const D = spec.hiddenSize;
  const block = spec.block;
  let xs: Vec[] = Array.from(ids, (id, t) => {
    const x = Float64Array.from(emb.tokens.subarray(id * D, (id + 1) * D), (v) => v * block.embedScale);
    if (!block.rope && emb.positions) for (let i = 0; i < D; i++) x[i] += emb.positions[t * D + i];
    return x;
  });
  const residualRms: number[] = [];
  layers.forEach((w, layer) => {
    xs = referenceLayer(spec, w, xs, { layer });
    let sq = 0;
    for (const x of xs) for (const v of x) sq += v * v;
    residualRms.push(Math.sqrt(sq / (xs.length * D)));
  });
  const head: Linear = { weight: emb.lmHead, out: spec.vocabSize, in: D };
  const cap = block.finalSoftcap;
  const logits = xs.map((x) => {
    const l = applyLinear(head, normalize(block, emb.finalNorm, x));
    return cap === null ? l : l.map((v) => cap * Math.tanh(v / cap));
  });
  return { logits, residualRms };
}

/** Logits [T][V] for one token sequence starting at position 0. */
export function referenceLogits(
  spec: ModelSpec,
  emb: EmbeddingWeights,
  layers: LayerWeights[],
  ids: ArrayLike<number>,
): Vec[] {
  return referenceForward(spec, emb, layers, ids).logits;
}

/** −log softmax(logits)[target]. */
export function referenceNll(logits: Vec, target: number): number {
  let max = -Infinity;
  for (const l of logits) max = Math.max(max, l);
  let z = 0;
  for (const l of logits) z += Math.exp(l - max);
  return Math.log(z) + max - logits[target];
}

/**
 * GPT-2 layer weights read straight from the checkpoint's Conv1D tensors ([in, out]) by index arithmetic,
 * independently of the app's adapter, so a wrong split or transpose there cannot hide in both paths.
 */
export async function gpt2LayerFromRaw(
  read: (name: string) => Promise<Float32Array>,
  prefix: string,
  spec: ModelSpec,
  i: number,
): Promise<LayerWeights> {
  const D = spec.hiddenSize;
  const F = spec.intermediateSize;
  const p = `${prefix}h.${i}.`;
  const conv = (
    w: Float32Array,
    inDim: number,
    outDim: number,
    col0: number,
    cols: number,
    b?: Float32Array,
  ): Linear => {
    const weight = new Float32Array(cols * inDim);
    for (let o = 0; o < cols; o++)
      for (let k = 0; k < inDim; k++) weight[o * inDim + k] = w[k * outDim + col0 + o];
    return { weight, bias: b?.slice(col0, col0 + cols), out: cols, in: inDim };
  };
  const cAttn = await read(`${p}attn.c_attn.weight`);
  const cAttnB = await read(`${p}attn.c_attn.bias`);
  return {
    attnNorm: { weight: await read(`${p}ln_1.weight`), bias: await read(`${p}ln_1.bias`) },
    q: conv(cAttn, D, 3 * D, 0, D, cAttnB),
    k: conv(cAttn, D, 3 * D, D, D, cAttnB),
    v: conv(cAttn, D, 3 * D, 2 * D, D, cAttnB),
    o: conv(await read(`${p}attn.c_proj.weight`), D, D, 0, D, await read(`${p}attn.c_proj.bias`)),
    mlpNorm: { weight: await read(`${p}ln_2.weight`), bias: await read(`${p}ln_2.bias`) },
    up: conv(await read(`${p}mlp.c_fc.weight`), D, F, 0, F, await read(`${p}mlp.c_fc.bias`)),
    down: conv(await read(`${p}mlp.c_proj.weight`), F, D, 0, D, await read(`${p}mlp.c_proj.bias`)),
  };
}
