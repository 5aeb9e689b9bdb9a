/**
 * A float64 reference of one decoder block as `ModelSpec.block` describes it, written from the Hugging
 * Face definitions token by token and head by head, for the recipe features the graphs gained with the
 * block builder (gain offset, q/k norms, post-norms, scaled RoPE, query scale, softcaps, sliding windows,
 * gated or plain MLPs with any activation, biases everywhere). It shares nothing with the graphs; the
 * shared test/reference/forward.ts is kept to its own features by its owner.
 */
import type {
  BlockRecipe,
  EmbeddingWeights,
  LayerWeights,
  Linear,
  ModelSpec,
  Norm,
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

function normalize(r: BlockRecipe, n: Norm, x: Vec, kind = r.norm.kind): Vec {
  const D = x.length;
  let mean = 0;
  if (kind === 'layer') {
    for (let i = 0; i < D; i++) mean += x[i];
    mean /= D;
  }
  let v = 0;
  for (let i = 0; i < D; i++) v += (x[i] - mean) ** 2;
  const inv = 1 / Math.sqrt(v / D + r.norm.eps);
  return x.map((xi, i) => (xi - mean) * inv * (n.weight[i] + r.norm.offset) + (n.bias ? n.bias[i] : 0));
}

/** rotate_half RoPE at position t: pairs (i, i + d/2) turn by t·invFreq[i], scaled by attentionFactor. */
export function ropeAt(r: BlockRecipe, x: Vec, t: number): Vec {
  if (!r.rope) return x;
  const half = x.length / 2;
  const f = r.rope.attentionFactor;
  const y = new Float64Array(x.length);
  for (let i = 0; i < half; i++) {
    const a = t * r.rope.invFreq[i];
    const c = Math.cos(a) * f;
    const s = Math.sin(a) * f;
    y[i] = x[i] * c - x[i + half] * s;
    y[i + half] = x[i + half] * c + x[i] * s;
  }
  return y;
}

/** erf to double precision: Maclaurin series below 2.5, the erfc continued fraction above. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 60; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = e^(−a²)/√π · 1/(a + ½/(a + 1/(a + (3/2)/(a + …))))
  let f = a;
  for (let k = 80; k >= 1; k--) f = a + k / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

function act(r: BlockRecipe, z: number): number {
  switch (r.mlp.act) {
    case 'silu':
      return z / (1 + Math.exp(-z));
    case 'gelu_tanh':
      return 0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3)));
    case 'gelu':
      return 0.5 * z * (1 + erf(z / Math.SQRT2));
  }
}

export interface LayerEdit {
  /** Replaces each pre-RoPE key (after any key norm) of KV head g. */
  key?: (k: Vec, g: number) => Vec;
  value?: (v: Vec, g: number) => Vec;
}

/** One decoder layer over a sequence starting at position 0, under the layer's window (null: causal). */
export function referenceBlock(
  spec: ModelSpec,
  w: LayerWeights,
  xs: Vec[],
  window: number | null,
  edit: LayerEdit = {},
): Vec[] {
  const r = spec.block;
  const { numHeads: H, numKvHeads: Hkv, headDim: d } = spec;
  const G = H / Hkv;
  const head = (a: Vec, j: number) => a.slice(j * d, (j + 1) * d);
  const headNorm = (a: Vec, n: Norm | undefined) => (r.qkNorm ? normalize(r, n!, a, 'rms') : a);
  const qs: Vec[][] = [];
  const ks: Vec[][] = [];
  const vs: Vec[][] = [];
  xs.forEach((x, t) => {
    const h = normalize(r, w.attnNorm, x);
    const q = applyLinear(w.q, h);
    const k = applyLinear(w.k, h);
    const v = applyLinear(w.v, h);
    qs.push(Array.from({ length: H }, (_, j) => ropeAt(r, headNorm(head(q, j), w.qNorm), t)));
    ks.push(
      Array.from({ length: Hkv }, (_, j) => {
        const pre = headNorm(head(k, j), w.kNorm);
        return ropeAt(r, edit.key ? edit.key(pre, j) : pre, t);
      }),
    );
    vs.push(Array.from({ length: Hkv }, (_, j) => (edit.value ? edit.value(head(v, j), j) : head(v, j))));
  });
  return xs.map((x, t) => {
    const first = window === null ? 0 : Math.max(0, t - window + 1);
    const ctx = new Float64Array(H * d);
    for (let hq = 0; hq < H; hq++) {
      const g = Math.floor(hq / G);
      const scores: number[] = [];
      for (let s = first; s <= t; s++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += qs[t][hq][i] * ks[s][g][i];
        let score = dot * r.queryScale;
        if (r.attnSoftcap !== null) score = r.attnSoftcap * Math.tanh(score / r.attnSoftcap);
        scores.push(score);
      }
      const max = Math.max(...scores);
      const z = scores.reduce((acc, s) => acc + Math.exp(s - max), 0);
      scores.forEach((sc, n) => {
        const p = Math.exp(sc - max) / z;
        for (let i = 0; i < d; i++) ctx[hq * d + i] += p * vs[first + n][g][i];
      });
    }
    let attn = applyLinear(w.o, ctx);
    if (r.postNorms) attn = normalize(r, w.postAttnNorm!, attn);
    const h = x.map((xi, i) => xi + attn[i]);
    const n2 = normalize(r, w.mlpNorm, h);
    let hidden: Vec;
    if (r.mlp.gated) {
      const up = applyLinear(w.up, n2);
      hidden = applyLinear(w.gate!, n2).map((gt, i) => act(r, gt) * up[i]);
    } else {
      hidden = applyLinear(w.up, n2).map((u) => act(r, u));
    }
    let m = applyLinear(w.down, hidden);
    if (r.postNorms) m = normalize(r, w.postMlpNorm!, m);
    return h.map((hi, i) => hi + m[i]);
  });
}

/** Logits [T][V] of one sequence from position 0: embedScale, per-layer windows, final softcap. */
export function referenceModel(
  spec: ModelSpec,
  emb: EmbeddingWeights,
  layers: LayerWeights[],
  ids: ArrayLike<number>,
): Vec[] {
  const r = spec.block;
  const D = spec.hiddenSize;
  let xs: Vec[] = Array.from(ids, (id, t) => {
    const x = Float64Array.from(emb.tokens.subarray(id * D, (id + 1) * D), (v) => v * r.embedScale);
    if (!r.rope && emb.positions) for (let i = 0; i < D; i++) x[i] += emb.positions[t * D + i];
    return x;
  });
  layers.forEach((w, i) => (xs = referenceBlock(spec, w, xs, r.slidingWindow[i])));
  const lmHead: Linear = { weight: emb.lmHead, out: spec.vocabSize, in: D };
  return xs.map((x) => {
    const logits = applyLinear(lmHead, normalize(r, emb.finalNorm, x));
    const cap = r.finalSoftcap;
    return cap === null ? logits : logits.map((l) => cap * Math.tanh(l / cap));
  });
}
