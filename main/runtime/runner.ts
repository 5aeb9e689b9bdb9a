import type ort from 'onnxruntime-node';
import type { EmbeddingWeights, LayerWeights, Linear, ModelSpec, Norm } from '../model/types.ts';
import type { LayerCompression } from '../core/kv.ts';
import { RankwiseError } from '../core/errors.ts';
import { type Engine, f32, i32 } from './engine.ts';
import {
  buildDecoderLayer,
  decoderLayerKey,
  LAYER_INPUTS,
  type LayerVariant,
} from './graphs/decoder-layer.ts';
import {
  buildEmbedding,
  buildHead,
  EMBED_INPUTS,
  embedKey,
  HEAD_INPUTS,
  headKey,
} from './graphs/embed-head.ts';
import { causalMask, layerWindow, ropeTables } from './rope.ts';

/** Where a runner gets weights: a checkpoint on disk, or an in-memory (e.g. compressed) model. */
export interface WeightSource {
  spec: ModelSpec;
  loadLayer(i: number): Promise<LayerWeights>;
  loadEmbeddings(): Promise<EmbeddingWeights>;
  /** Low-rank keys/values of layer i, for a compressed model; absent or null means the original layer. */
  compression?(i: number): LayerCompression | null;
}

/**
 * Every layer's weights in order, the next layer read and decoded while the caller computes with the
 * current one: onnxruntime runs a layer on its own threads, so the main thread's reading (a bfloat16
 * checkpoint is decoded in JavaScript) overlaps it instead of leaving the cores idle between layers.
 * Memory holds two layers' weights at most.
 */
export async function* layersAhead(
  source: WeightSource,
): AsyncGenerator<{ layer: number; weights: LayerWeights }> {
  const n = source.spec.numLayers;
  let next = n > 0 ? source.loadLayer(0) : null;
  for (let layer = 0; layer < n; layer++) {
    const weights = await next!;
    next = layer + 1 < n ? source.loadLayer(layer + 1) : null;
    // a failed read surfaces at its own await, never as an unhandled rejection while this layer runs
    next?.catch(() => undefined);
    yield { layer, weights };
  }
}

/** The same weights with per-layer compressions applied at run time (an in-memory compressed model). */
export function withCompression(source: WeightSource, layers: (LayerCompression | null)[]): WeightSource {
  return {
    spec: source.spec,
    loadLayer: (i) => source.loadLayer(i),
    loadEmbeddings: () => source.loadEmbeddings(),
    compression: (i) => layers[i] ?? null,
  };
}

export type Feeds = Record<string, ort.Tensor>;

/** The graph inputs that carry one layer's weights: exactly those the recipe's layer graph declares. */
export function layerWeightFeeds(spec: ModelSpec, w: LayerWeights): Feeds {
  const I = LAYER_INPUTS;
  const r = spec.block;
  const feeds: Feeds = {};
  const vec = (name: string, v: Float32Array | undefined, what: string) => {
    if (!v) throw new RankwiseError('internal', `layer weights lack ${what}`);
    feeds[name] = f32(v, [v.length]);
  };
  const lin = (names: [string, string], l: Linear | undefined, what: string, bias: boolean) => {
    if (!l) throw new RankwiseError('internal', `layer weights lack ${what}`);
    feeds[names[0]] = f32(l.weight, [l.out, l.in]);
    if (bias) vec(names[1], l.bias, `${what} bias`);
  };
  const norm = (names: [string, string], n: Norm | undefined, what: string) => {
    vec(names[0], n?.weight, what);
    if (r.norm.kind === 'layer') vec(names[1], n?.bias, `${what} bias`);
  };
  norm([I.attnNormW, I.attnNormB], w.attnNorm, 'attention norm');
  lin([I.wq, I.bq], w.q, 'q', r.bias.qkv);
  lin([I.wk, I.bk], w.k, 'k', r.bias.qkv);
  lin([I.wv, I.bv], w.v, 'v', r.bias.qkv);
  lin([I.wo, I.bo], w.o, 'o', r.bias.o);
  if (r.qkNorm) {
    vec(I.qNormW, w.qNorm?.weight, 'the per-head query norm');
    vec(I.kNormW, w.kNorm?.weight, 'the per-head key norm');
  }
  if (r.postNorms) norm([I.postAttnNormW, I.postAttnNormB], w.postAttnNorm, 'attention output norm');
  norm([I.mlpNormW, I.mlpNormB], w.mlpNorm, 'MLP norm');
  if (r.mlp.gated) lin([I.wGate, I.bGate], w.gate, 'MLP gate', r.bias.mlp);
  lin([I.wUp, I.bUp], w.up, 'MLP up', r.bias.mlp);
  lin([I.wDown, I.bDown], w.down, 'MLP down', r.bias.mlp);
  if (r.postNorms) norm([I.postMlpNormW, I.postMlpNormB], w.postMlpNorm, 'MLP output norm');
  return feeds;
}

/**
 * Runs the pieces of a model (embedding, one decoder layer, head) on batches of equal-length sequences
 * that all start at position 0. Orchestration over layers and windows lives in forward.ts.
 */
export class ModelRunner {
  private embeddings: EmbeddingWeights | null = null;
  private readonly positionFeeds = new Map<string, Feeds>();

  constructor(
    readonly engine: Engine,
    readonly source: WeightSource,
  ) {}

  get spec(): ModelSpec {
    return this.source.spec;
  }

  async embeddingWeights(): Promise<EmbeddingWeights> {
    if (!this.embeddings) this.embeddings = await this.source.loadEmbeddings();
    return this.embeddings;
  }

  /**
   * Mask and RoPE tables for sequences of length T at layer `layer` (its sliding window, if any), built
   * once per length and window. Without a layer, every layer must share one window (rope.ts layerWindow).
   */
  positionInputs(T: number, layer?: number): Feeds {
    const window = layerWindow(this.spec.block, layer);
    const key = `${T}:${window ?? 'causal'}`;
    let feeds = this.positionFeeds.get(key);
    if (!feeds) {
      feeds = { [LAYER_INPUTS.mask]: f32(causalMask(T, window), [T, T]) };
      const rope = this.spec.block.rope;
      if (rope) {
        const d = this.spec.headDim;
        const { cos, sin } = ropeTables(T, d, rope);
        feeds[LAYER_INPUTS.cos] = f32(cos, [T, 1, d]);
        feeds[LAYER_INPUTS.sin] = f32(sin, [T, 1, d]);
      }
      this.positionFeeds.set(key, feeds);
    }
    return feeds;
  }

  /** ids [B·T] → hidden [B·T·D]. */
  async embed(ids: Int32Array, B: number, T: number): Promise<Float32Array> {
    const spec = this.spec;
    const e = await this.embeddingWeights();
    const session = await this.engine.session(embedKey(spec), () => buildEmbedding(spec));
    const feeds: Feeds = {
      [EMBED_INPUTS.ids]: i32(ids, [B, T]),
      [EMBED_INPUTS.table]: f32(e.tokens, [spec.vocabSize, spec.hiddenSize]),
    };
    if (!spec.block.rope) {
      if (!e.positions) throw new RankwiseError('internal', 'learned-position model without position table');
      feeds[EMBED_INPUTS.positions] = f32(e.positions, [spec.maxPositions, spec.hiddenSize]);
      feeds[EMBED_INPUTS.posIds] = i32(
        Int32Array.from({ length: T }, (_, t) => t),
        [T],
      );
    }
    const out = await session.run(feeds);
    return out.x.data as Float32Array;
  }

  /**
   * hidden [B·T·D] through decoder layer `layer` (whose sliding window applies) given its weight feeds.
   * The index may be left out only when all layers attend alike.
   */
  async layer(
    weightFeeds: Feeds,
    hidden: Float32Array,
    B: number,
    T: number,
    layer?: number,
  ): Promise<Float32Array> {
    const out = await this.layerVariant({}, weightFeeds, hidden, B, T, layer);
    return out.y.data as Float32Array;
  }

  /**
   * Decoder layer `layer` in a graph variant (projections, capture, error): `feeds` carries the weights and
   * whatever inputs the variant adds; every output of the variant is returned. The layer index picks the
   * attention mask (sliding windows) and may be left out only when all layers attend alike.
   */
  async layerVariant(
    variant: LayerVariant,
    feeds: Feeds,
    hidden: Float32Array,
    B: number,
    T: number,
    layer?: number,
  ): Promise<Record<string, ort.Tensor>> {
    const spec = this.spec;
    const session = await this.engine.session(decoderLayerKey(spec, variant), () =>
      buildDecoderLayer(spec, variant),
    );
    return session.run({
      ...feeds,
      ...this.positionInputs(T, layer),
      [LAYER_INPUTS.x]: f32(hidden, [B, T, spec.hiddenSize]),
    });
  }

  /** Final norm + LM head on N rows of hidden state: per-row NLL of `targets`, and logits on request. */
  async head(
    hidden: Float32Array,
    N: number,
    targets: Int32Array,
    wantLogits: boolean,
  ): Promise<{ nll: Float32Array; logits?: Float32Array }> {
    const spec = this.spec;
    const e = await this.embeddingWeights();
    const session = await this.engine.session(headKey(spec), () => buildHead(spec));
    const feeds: Feeds = {
      [HEAD_INPUTS.h]: f32(hidden, [N, spec.hiddenSize]),
      [HEAD_INPUTS.normW]: f32(e.finalNorm.weight, [spec.hiddenSize]),
      [HEAD_INPUTS.lmHead]: f32(e.lmHead, [spec.vocabSize, spec.hiddenSize]),
      [HEAD_INPUTS.targets]: i32(targets, [N]),
    };
    if (spec.block.norm.kind === 'layer') {
      const b = e.finalNorm.bias;
      if (!b) throw new RankwiseError('internal', 'LayerNorm head without bias');
      feeds[HEAD_INPUTS.normB] = f32(b, [spec.hiddenSize]);
    }
    const out = await session.run(feeds, wantLogits ? ['nll', 'logits'] : ['nll']);
    return wantLogits
      ? { nll: out.nll.data as Float32Array, logits: out.logits.data as Float32Array }
      : { nll: out.nll.data as Float32Array };
  }
}
