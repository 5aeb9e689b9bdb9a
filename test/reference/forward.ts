/**
 * A slow, obviously-correct forward pass in float64 plain TypeScript, for tests only: token by token,
 * head by head, following the HF definitions literally (Llama: RMSNorm, rotate_half RoPE, repeat_kv GQA,
 * SwiGLU; GPT-2: LayerNorm, learned positions, gelu_new). It shares nothing with the ONNX graphs.
 */
import type { EmbeddingWeights, LayerWeights, Linear, ModelSpec, Norm } from '../../main/model/types.ts';

type Vec = Float64Array;

function applyLinear(l: Linear, x: Vec): Vec {
  const y = new Float64Array(l.out);
  for (let o = 0; o < l.out; o++) {
    let s = l.bias ? l.bias[o] : 0;
    for (let i = 0; i < l.in; i++) s += l.weight[o * l.in + i] * x[i];
    y[o] = s;
  }
  return y;
}

function normalize(spec: ModelSpec, n: Norm, x: Vec): Vec {
  const D = x.length;
  const y = new Float64Array(D);
  if (spec.norm.kind === 'rms') {
    let ms = 0;
    for (let i = 0; i < D; i++) ms += x[i] * x[i];
    const inv = 1 / Math.sqrt(ms / D + spec.norm.eps);
    for (let i = 0; i < D; i++) y[i] = x[i] * inv * n.weight[i];
  } else {
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x[i];
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / D + spec.norm.eps);
    for (let i = 0; i < D; i++) y[i] = (x[i] - mean) * inv * n.weight[i] + (n.bias ? n.bias[i] : 0);
  }
  return y;
}

/** rotate_half RoPE on one head vector at position t: pairs (i, i + d/2) rotate by t·θ^(−2i/d). */
export function ropeVec(x: Vec, t: number, theta: number): Vec {
  const d = x.length;
  const half = d / 2;
  const y = new Float64Array(d);
  for (let i = 0; i < half; i++) {
    const a = t * Math.pow(theta, (-2 * i) / d);
    y[i] = x[i] * Math.cos(a) - x[i + half] * Math.sin(a);
    y[i + half] = x[i + half] * Math.cos(a) + x[i] * Math.sin(a);
  }
  return y;
}

function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** Per-token, per-head q, k (pre- and post-RoPE) and v of a layer's input rows. */
export interface HeadVectors {
  qPre: Vec[][];
  kPre: Vec[][];
  q: Vec[][];
  k: Vec[][];
  v: Vec[][];
}

export function referenceHeads(spec: ModelSpec, w: LayerWeights, xs: Vec[]): HeadVectors {
  const { numHeads: H, numKvHeads: Hkv } = spec;
  // Head widths come from the weights, so folded (narrower) layers run through the same code.
  const dk = w.k.out / Hkv;
  const dv = w.v.out / Hkv;
  const r: HeadVectors = { qPre: [], kPre: [], q: [], k: [], v: [] };
  xs.forEach((x, t) => {
    const h = normalize(spec, w.attnNorm, x);
    const q = applyLinear(w.q, h);
    const k = applyLinear(w.k, h);
    const v = applyLinear(w.v, h);
    const head = (a: Vec, j: number, n: number) => a.slice(j * n, (j + 1) * n);
    const rot = (a: Vec) => (spec.rope ? ropeVec(a, t, spec.rope.theta) : a);
    r.qPre.push(Array.from({ length: H }, (_, j) => head(q, j, dk)));
    r.kPre.push(Array.from({ length: Hkv }, (_, j) => head(k, j, dk)));
    r.q.push(r.qPre[t].map(rot));
    r.k.push(r.kPre[t].map(rot));
    r.v.push(Array.from({ length: Hkv }, (_, j) => head(v, j, dv)));
  });
  return r;
}

/**
 * One decoder layer over a whole sequence of hidden rows (causal). `edit.key`/`edit.value`, when given,
 * replace each key and value vector of KV head g, to model compressed layers literally.
 */
export function referenceLayer(
  spec: ModelSpec,
  w: LayerWeights,
  xs: Vec[],
  edit: {
    /** The key attention uses, given the pre- and post-RoPE key of KV head g at position t. */
    key?: (k: { pre: Vec; post: Vec }, g: number, t: number) => Vec;
    value?: (v: Vec, g: number) => Vec;
  } = {},
): Vec[] {
  const { numHeads: H, numKvHeads: Hkv, headDim: d } = spec;
  const G = H / Hkv;
  const T = xs.length;
  const dk = w.k.out / Hkv;
  const dv = w.v.out / Hkv;
  const heads = referenceHeads(spec, w, xs);
  const qs = heads.q;
  const ks = edit.key
    ? heads.k.map((row, t) => row.map((post, g) => edit.key!({ pre: heads.kPre[t][g], post }, g, t)))
    : heads.k;
  const vs = edit.value ? heads.v.map((row) => row.map((v, g) => edit.value!(v, g))) : heads.v;
  const out: Vec[] = [];
  for (let t = 0; t < T; t++) {
    const concat = new Float64Array(H * dv);
    for (let hq = 0; hq < H; hq++) {
      const g = Math.floor(hq / G);
      const scores = new Float64Array(t + 1);
      let max = -Infinity;
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let i = 0; i < dk; i++) dot += qs[t][hq][i] * ks[s][g][i];
        // Always the original 1/√d: folding narrows heads but keeps the scale (methods.md §2.1).
        scores[s] = dot / Math.sqrt(d);
        max = Math.max(max, scores[s]);
      }
      let z = 0;
      for (let s = 0; s <= t; s++) z += Math.exp(scores[s] - max);
      for (let s = 0; s <= t; s++) {
        const p = Math.exp(scores[s] - max) / z;
        for (let i = 0; i < dv; i++) concat[hq * dv + i] += p * vs[s][g][i];
      }
    }
    const attn = applyLinear(w.o, concat);
    const h = xs[t].map((x, i) => x + attn[i]);
    const n2 = normalize(spec, w.mlpNorm, h);
    let act: Vec;
    if (spec.act === 'silu') {
      const gate = applyLinear(w.gate as Linear, n2);
      const up = applyLinear(w.up, n2);
      act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
    } else {
      act = applyLinear(w.up, n2).map(geluNew);
    }
    const down = applyLinear(w.down, act);
    out.push(h.map((x, i) => x + down[i]));
  }
  return out;
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
  let xs: Vec[] = Array.from(ids, (id, t) => {
    const x = Float64Array.from(emb.tokens.subarray(id * D, (id + 1) * D));
    if (!spec.rope && emb.positions) for (let i = 0; i < D; i++) x[i] += emb.positions[t * D + i];
    return x;
  });
  const residualRms: number[] = [];
  for (const w of layers) {
    xs = referenceLayer(spec, w, xs);
    let sq = 0;
    for (const x of xs) for (const v of x) sq += v * v;
    residualRms.push(Math.sqrt(sq / (xs.length * D)));
  }
  const head: Linear = { weight: emb.lmHead, out: spec.vocabSize, in: D };
  return { logits: xs.map((x) => applyLinear(head, normalize(spec, emb.finalNorm, x))), residualRms };
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
