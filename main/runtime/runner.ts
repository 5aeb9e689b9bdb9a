import type ort from 'onnxruntime-node';
import type { EmbeddingWeights, LayerWeights, ModelSpec } from '../model/types.ts';
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
import { causalMask, ropeTables } from './rope.ts';

/** Where a runner gets weights: a checkpoint on disk, or an in-memory (e.g. compressed) model. */
export interface WeightSource {
  spec: ModelSpec;
  loadLayer(i: number): Promise<LayerWeights>;
  loadEmbeddings(): Promise<EmbeddingWeights>;
  /** Low-rank keys/values of layer i, for a compressed model; absent or null means the original layer. */
  compression?(i: number): LayerCompression | null;
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

/** The graph inputs that carry one layer's weights. */
export function layerWeightFeeds(spec: ModelSpec, w: LayerWeights): Feeds {
  const I = LAYER_INPUTS;
  const lin = (l: { weight: Float32Array; out: number; in: number }) => f32(l.weight, [l.out, l.in]);
  const vec = (v: Float32Array | undefined, name: string) => {
    if (!v) throw new RankwiseError('internal', `layer weights lack ${name}`);
    return f32(v, [v.length]);
  };
  const feeds: Feeds = {
    [I.attnNormW]: vec(w.attnNorm.weight, 'attention norm'),
    [I.wq]: lin(w.q),
    [I.wk]: lin(w.k),
    [I.wv]: lin(w.v),
    [I.wo]: lin(w.o),
    [I.mlpNormW]: vec(w.mlpNorm.weight, 'MLP norm'),
    [I.wUp]: lin(w.up),
    [I.wDown]: lin(w.down),
  };
  if (spec.norm.kind === 'layer') {
    feeds[I.attnNormB] = vec(w.attnNorm.bias, 'attention norm bias');
    feeds[I.mlpNormB] = vec(w.mlpNorm.bias, 'MLP norm bias');
  }
  if (spec.qkvBias) {
    feeds[I.bq] = vec(w.q.bias, 'q bias');
    feeds[I.bk] = vec(w.k.bias, 'k bias');
    feeds[I.bv] = vec(w.v.bias, 'v bias');
  }
  if (spec.oBias) feeds[I.bo] = vec(w.o.bias, 'o bias');
  if (spec.act === 'silu') {
    if (!w.gate) throw new RankwiseError('internal', 'SwiGLU layer without gate weights');
    feeds[I.wGate] = lin(w.gate);
  }
  if (spec.mlpBias) {
    feeds[I.bUp] = vec(w.up.bias, 'MLP up bias');
    feeds[I.bDown] = vec(w.down.bias, 'MLP down bias');
  }
  return feeds;
}

/**
 * Runs the pieces of a model (embedding, one decoder layer, head) on batches of equal-length sequences
 * that all start at position 0. Orchestration over layers and windows lives in forward.ts.
 */
export class ModelRunner {
  private embeddings: EmbeddingWeights | null = null;
  private readonly positionFeeds = new Map<number, Feeds>();

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

  /** Mask and RoPE tables for sequences of length T, built once per length. */
  positionInputs(T: number): Feeds {
    let feeds = this.positionFeeds.get(T);
    if (!feeds) {
      feeds = { [LAYER_INPUTS.mask]: f32(causalMask(T), [T, T]) };
      if (this.spec.rope) {
        const { cos, sin } = ropeTables(T, this.spec.headDim, this.spec.rope.theta);
        feeds[LAYER_INPUTS.cos] = f32(cos, [T, 1, this.spec.headDim]);
        feeds[LAYER_INPUTS.sin] = f32(sin, [T, 1, this.spec.headDim]);
      }
      this.positionFeeds.set(T, feeds);
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
    if (!spec.rope) {
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

  /** hidden [B·T·D] through one decoder layer whose weight feeds are given. */
  async layer(weightFeeds: Feeds, hidden: Float32Array, B: number, T: number): Promise<Float32Array> {
    const out = await this.layerVariant({}, weightFeeds, hidden, B, T);
    return out.y.data as Float32Array;
  }

  /**
   * One decoder layer in a graph variant (projections, capture, error): `feeds` carries the weights and
   * whatever inputs the variant adds; every output of the variant is returned.
   */
  async layerVariant(
    variant: LayerVariant,
    feeds: Feeds,
    hidden: Float32Array,
    B: number,
    T: number,
  ): Promise<Record<string, ort.Tensor>> {
    const spec = this.spec;
    const session = await this.engine.session(decoderLayerKey(spec, variant), () =>
      buildDecoderLayer(spec, variant),
    );
    return session.run({
      ...feeds,
      ...this.positionInputs(T),
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
    if (spec.norm.kind === 'layer') {
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
