/**
 * Small in-memory models for recipes no checkpoint adapter produces yet: a ModelSpec from a block
 * recipe, and seeded random weights with every optional tensor the recipe asks for. The runtime reads
 * only the spec's shape fields and `block`, so the spec carries nothing else.
 */
import { mulberry32, normal } from '../../main/model/prng.ts';
import type {
  BlockRecipe,
  EmbeddingWeights,
  LayerWeights,
  Linear,
  ModelSpec,
  Norm,
} from '../../main/model/types.ts';
import type { WeightSource } from '../../main/runtime/runner.ts';
import type { Vec } from './block-reference.ts';

export const SHAPE = {
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  intermediateSize: 48,
  vocabSize: 64,
  maxPositions: 64,
} as const;

/** θ^(−2i/d): plain RoPE's frequencies. */
export function defaultInvFreq(theta: number, d: number): number[] {
  return Array.from({ length: d / 2 }, (_, i) => Math.pow(theta, (-2 * i) / d));
}

/** A Llama-like block (RMSNorm, SwiGLU, RoPE, no biases, full attention) with `overrides` on top. */
export function recipe(overrides: Partial<BlockRecipe> = {}): BlockRecipe {
  return {
    norm: { kind: 'rms', eps: 1e-6, offset: 0 },
    postNorms: false,
    qkNorm: false,
    mlp: { gated: true, act: 'silu' },
    bias: { qkv: false, o: false, mlp: false },
    rope: {
      theta: 10000,
      invFreq: defaultInvFreq(10000, SHAPE.headDim),
      attentionFactor: 1,
      scaling: 'default',
    },
    queryScale: 1 / Math.sqrt(SHAPE.headDim),
    attnSoftcap: null,
    finalSoftcap: null,
    embedScale: 1,
    slidingWindow: new Array<number | null>(SHAPE.numLayers).fill(null),
    ...overrides,
  };
}

export function specFor(block: BlockRecipe): ModelSpec {
  // The runtime computes from `block` alone and never reads modelType, so the spec goes without one.
  return {
    ...SHAPE,
    block,
    tieWordEmbeddings: true,
    dtype: 'F32',
    bosTokenId: null,
    eosTokenId: null,
  } as Partial<ModelSpec> as ModelSpec;
}

export interface MemoryModel {
  spec: ModelSpec;
  emb: EmbeddingWeights;
  layers: LayerWeights[];
}

/** Seeded weights scaled as main/model/synthetic.ts scales its checkpoints (O(1) activations). */
export function randomModel(spec: ModelSpec, seed: number): MemoryModel {
  const rng = mulberry32(seed);
  const r = spec.block;
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: F } = spec;
  const V = spec.vocabSize;
  const residual = 1 / Math.sqrt(D);
  const lin = (out: number, inp: number, std: number, bias: boolean): Linear => ({
    weight: normal(out * inp, rng, std),
    bias: bias ? normal(out, rng, 0.05) : undefined,
    out,
    in: inp,
  });
  // A gain near 1 whether it is stored as w or as w − 1 (offset recipes).
  const norm = (n: number, gain = 1): Norm => ({
    weight: normal(n, rng, 0.1, gain - r.norm.offset),
    bias: r.norm.kind === 'layer' ? normal(n, rng, 0.05) : undefined,
  });
  const layers = Array.from({ length: spec.numLayers }, (): LayerWeights => {
    const w: LayerWeights = {
      attnNorm: norm(D),
      q: lin(H * d, D, 1 / Math.sqrt(D), r.bias.qkv),
      k: lin(Hkv * d, D, 1 / Math.sqrt(D), r.bias.qkv),
      v: lin(Hkv * d, D, 1 / Math.sqrt(D), r.bias.qkv),
      o: lin(D, H * d, residual / Math.sqrt(H * d), r.bias.o),
      mlpNorm: norm(D),
      up: lin(F, D, 1 / Math.sqrt(D), r.bias.mlp),
      down: lin(D, F, residual / Math.sqrt(F), r.bias.mlp),
    };
    if (r.qkNorm) {
      w.qNorm = { weight: normal(d, rng, 0.1, 1 - r.norm.offset) };
      w.kNorm = { weight: normal(d, rng, 0.1, 1 - r.norm.offset) };
    }
    if (r.mlp.gated) w.gate = lin(F, D, 1 / Math.sqrt(D), r.bias.mlp);
    if (r.postNorms) {
      w.postAttnNorm = norm(D, 0.5);
      w.postMlpNorm = norm(D, 0.5);
    }
    return w;
  });
  const emb: EmbeddingWeights = {
    // Rows of RMS 1 once embedScale has multiplied them.
    tokens: normal(V * D, rng, 1 / r.embedScale),
    positions: r.rope ? undefined : normal(spec.maxPositions * D, rng, 0.5),
    finalNorm: norm(D, 0.5),
    // Untied, with logits of a few units: enough for a final softcap to bend them.
    lmHead: normal(V * D, rng, 4 / Math.sqrt(D)),
  };
  return { spec, emb, layers };
}

export function sourceOf(m: MemoryModel): WeightSource {
  return {
    spec: m.spec,
    loadLayer: async (i) => m.layers[i],
    loadEmbeddings: async () => m.emb,
  };
}

/** Rows b·T … (b+1)·T − 1 of a [B·T, D] float32 block, as float64 vectors. */
export function rowsOf(x: Float32Array, b: number, T: number, D: number): Vec[] {
  return Array.from({ length: T }, (_, t) =>
    Float64Array.from(x.subarray((b * T + t) * D, (b * T + t + 1) * D)),
  );
}

/** A deterministic token sequence. */
export function tokenIds(n: number, mul: number, add: number, V = SHAPE.vocabSize): Int32Array {
  return Int32Array.from({ length: n }, (_, t) => (t * mul + add) % V);
}
