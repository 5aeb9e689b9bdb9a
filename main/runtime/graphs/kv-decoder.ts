/**
 * The exported decoder (ARCHITECTURE.md §7): the whole model as one ONNX graph with its weights baked in
 * and a KV cache that holds each layer's narrow keys and values, named as Optimum and onnxruntime-genai
 * name them, so stock runtimes can drive it. It keeps to what older runtimes have: standard operators of
 * opset 17 (IR version 8), float32, int64 and bool tensors in every computation (no float64, so no Cos or
 * Sin kernels are needed: RoPE reads precomputed float32 tables), loaded and run by onnxruntime 1.21
 * (transformers.js 3). A 16-bit export stores its weights and its cache in 16 bits (`KvDecoderPrecision`)
 * and still computes in float32.
 */
import fs from 'node:fs';
import { RankwiseError } from '../../core/errors.ts';
import type { NarrowLayer } from '../../model/fold.ts';
import { encodeFromFloat32 } from '../../model/dtype.ts';
import { attentionShape } from '../../model/kv-layout.ts';
import type { EmbeddingWeights, Linear, ModelSpec, Norm, RopeRecipe } from '../../model/types.ts';
import { attr, GraphBuilder } from '../onnx/builder.ts';
import { DataType } from '../onnx/proto.ts';
import { layerWindow, ropeTables } from '../rope.ts';
import { thinSwap } from '../thin-rope.ts';
import {
  attend,
  attentionResidual,
  blockOf,
  capLogits,
  type LinearNames,
  mlpResidual,
  norm,
  type NormNames,
  projectHeads,
  scaleEmbedding,
  scaleQueries,
  thinRotate,
} from './block.ts';
import { linear, rope, shapeWith } from './common.ts';

/** The opset the decoder imports: every operator it uses exists, with the semantics used, at 17. */
export const KV_DECODER_OPSET = 17;
/** The IR version that goes with opset 17 (ONNX 1.12). */
export const KV_DECODER_IR_VERSION = 8;

export interface KvDecoderSource {
  spec: ModelSpec;
  loadEmbeddings(): Promise<EmbeddingWeights>;
  loadNarrowLayer(i: number): Promise<NarrowLayer>;
}

/** Element types of the cache tensors (past and present). */
export type KvCacheDtype = 'float32' | 'float16';
/** How weights are stored in the file. */
export type KvWeightsDtype = 'float32' | 'float16' | 'bfloat16';

/**
 * What the decoder stores in 16 bits. Everything is computed in float32 either way: each stored 16-bit
 * weight is Cast to float32 once (onnxruntime folds a Cast of an initializer at load, so decoding is as
 * fast as a float32 file), and the cache is rounded to 16 bits as it is written and widened as attention
 * reads it. Computing in float16 instead was measured on the CPU (a 2048×4096 MatMul and Softmax, one
 * token): no faster on onnxruntime-node 1.30, 12× slower on 1.21 (transformers.js 3's), and it would round
 * every activation to float16, whose range (65504) a BF16 model's activations can exceed.
 */
export interface KvDecoderPrecision {
  cache: KvCacheDtype;
  weights: KvWeightsDtype;
}

export const FLOAT32_PRECISION: KvDecoderPrecision = { cache: 'float32', weights: 'float32' };

export interface KvDecoderOptions {
  /** Default: float32 throughout. */
  precision?: KvDecoderPrecision;
  /** Float32 bytes of each slice a 16-bit output head is cast in (default HEAD_SLICE_BYTES). */
  headSliceBytes?: number;
  externalData?: {
    /** Absolute path of the data file to write. */
    path: string;
    /** The file name recorded in the model, relative to model.onnx. */
    location: string;
    /** Initializers at least this big go external; default 1024. */
    minBytes?: number;
  };
}

export const KV_DECODER_IO = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  pastKey: (i: number) => `past_key_values.${i}.key`,
  pastValue: (i: number) => `past_key_values.${i}.value`,
  presentKey: (i: number) => `present.${i}.key`,
  presentValue: (i: number) => `present.${i}.value`,
  logits: 'logits',
} as const;

const BATCH = 'batch_size';
const SEQ = 'sequence_length';
const PAST = 'past_sequence_length';
const TOTAL = 'total_sequence_length';

/**
 * cos and sin of every position the model has, [maxPositions, d/2] each, taken from rope.ts's tables
 * (angles in float64, rounded to float32 once), so the decoder rotates with exactly the numbers of the
 * in-memory model.
 */
function ropeHalfTables(
  positions: number,
  d: number,
  recipe: RopeRecipe,
): { cos: Float32Array; sin: Float32Array } {
  const half = d / 2;
  const full = ropeTables(positions, d, recipe);
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let t = 0; t < positions; t++) {
    cos.set(full.cos.subarray(t * d, t * d + half), t * half);
    // rope.ts signs the first half (−sin) for the swap-halves form; the second half is +sin
    sin.set(full.sin.subarray(t * d + half, (t + 1) * d), t * half);
  }
  return { cos, sin };
}

/**
 * Rows of a per-position table: Gather, with negative positions sent past the end of the table so that
 * Gather refuses them as it refuses positions ≥ rows (a negative index would otherwise count back from
 * the end and wrap silently).
 */
function tableRows(g: GraphBuilder, table: string, positions: string, rows: number): string {
  const index = g.op('Where', [
    g.op('Less', [positions, g.constInt64([0], [])]),
    g.constInt64([rows], []),
    positions,
  ]);
  return g.op('Gather', [table, index], { axis: attr.i(0) });
}

/**
 * The whole-model decoder with a thin KV cache: input_ids, attention_mask, position_ids and per layer
 * past_key_values.{i}.key/value [batch, H_kv, past, r_i] → logits [batch, seq, vocab] and present.{i}.*
 * [batch, H_kv, past + seq, r_i], the cache in `precision.cache`. Weights become initializers of
 * `precision.weights`; layers are read one at a time and, with `externalData`, streamed to the data file as
 * they are added, so memory holds about one copy of the model as stored.
 */
export async function buildKvDecoder(
  source: KvDecoderSource,
  opts: KvDecoderOptions = {},
): Promise<Uint8Array> {
  const ext = opts.externalData;
  const fd = ext ? fs.openSync(ext.path, 'w') : null;
  try {
    const sink =
      ext && fd !== null ? { fd, location: ext.location, minBytes: ext.minBytes ?? 1024 } : undefined;
    const g = new GraphBuilder('rankwise_kv_decoder', sink);
    return await buildGraph(
      source,
      g,
      sink?.minBytes ?? null,
      opts.precision ?? FLOAT32_PRECISION,
      opts.headSliceBytes ?? HEAD_SLICE_BYTES,
    );
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/** Float32 bytes of one slice of a 16-bit output head cast at a time. */
export const HEAD_SLICE_BYTES = 64 * 2 ** 20;

/**
 * h [N, D] · headᵀ → logits [N, V]. A 16-bit head is cast and multiplied slice by slice of its rows, so a
 * runtime that casts as it runs (no constant folding) holds one 64 MiB float32 slice at a time rather than
 * the whole table (1 GiB for 128K × 2048). The logits are the same either way.
 */
function headLogits(
  g: GraphBuilder,
  h: string,
  head: { value: string; float: boolean },
  size: { V: number; D: number; sliceBytes: number },
  toFloat: (w: { value: string; float: boolean }) => string,
): string {
  const { V, D } = size;
  const rows = Math.max(1, Math.floor(size.sliceBytes / (4 * D)));
  if (head.float || rows >= V) return linear(g, h, toFloat(head));
  const parts: string[] = [];
  for (let start = 0; start < V; start += rows) {
    const slice = g.op('Slice', [
      head.value,
      g.constInt64([start]),
      g.constInt64([Math.min(V, start + rows)]),
      g.constInt64([0]),
    ]);
    parts.push(linear(g, h, toFloat({ value: slice, float: false })));
  }
  return g.op('Concat', parts, { axis: attr.i(-1) });
}

// A protobuf message cannot exceed 2 GiB; leave room for the graph itself.
const INLINE_LIMIT = 2 ** 31 - 64 * 2 ** 20;

const STORED = {
  float32: { elemType: DataType.FLOAT, dtype: 'F32' },
  float16: { elemType: DataType.FLOAT16, dtype: 'F16' },
  bfloat16: { elemType: DataType.BFLOAT16, dtype: 'BF16' },
} as const;

async function buildGraph(
  source: KvDecoderSource,
  g: GraphBuilder,
  externalMinBytes: number | null,
  precision: KvDecoderPrecision,
  headSliceBytes: number,
): Promise<Uint8Array> {
  const spec = source.spec;
  const recipe = spec.block;
  const IO = KV_DECODER_IO;
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: d, vocabSize: V } = spec;
  const G = H / Hkv;
  const layerNormed = recipe.norm.kind === 'layer';
  const b = blockOf(g, recipe, { opset: KV_DECODER_OPSET });

  const inputIds = g.input(IO.inputIds, [BATCH, SEQ], DataType.INT64);
  const mask = g.input(IO.attentionMask, [BATCH, TOTAL], DataType.INT64);
  const positionIds = g.input(IO.positionIds, [BATCH, SEQ], DataType.INT64);

  let inlineBytes = 0;
  const stored = STORED[precision.weights];
  /**
   * The initializer `name` as stored, and whether it is float32 already; `exact` tables (RoPE) stay float32
   * whatever the weights' type.
   */
  const storedWeight = (name: string, data: Float32Array, dims: number[], exact = false) => {
    const bytes =
      exact || stored.elemType === DataType.FLOAT
        ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        : encodeFromFloat32(data, stored.dtype);
    if (externalMinBytes === null || bytes.byteLength < externalMinBytes) {
      inlineBytes += bytes.byteLength;
      // Fail before reading the rest of a model that could never be serialised.
      if (inlineBytes > INLINE_LIMIT) {
        throw new RankwiseError(
          'internal',
          'the weights exceed what one ONNX file holds; write them as external data',
        );
      }
    }
    if (exact || stored.elemType === DataType.FLOAT)
      return { value: g.initializer(name, data, dims), float: true };
    return { value: g.rawInitializer(name, bytes, dims, stored.elemType), float: false };
  };
  const toFloat = (w: { value: string; float: boolean }) =>
    w.float ? w.value : g.op('Cast', [w.value], { to: attr.i(DataType.FLOAT) });
  /** A float32 value named by `name` (a 16-bit weight is cast where it is used). */
  const weight = (name: string, data: Float32Array, dims: number[], exact = false) =>
    toFloat(storedWeight(name, data, dims, exact));
  const vector = (name: string, v: Float32Array | undefined) => {
    if (!v) throw new RankwiseError('internal', `the exported decoder lacks ${name}`);
    return weight(name, v, [v.length]);
  };
  const normWeights = (prefix: string, n: Norm | undefined): NormNames => {
    if (!n) throw new RankwiseError('internal', `the exported decoder lacks ${prefix}`);
    return {
      w: vector(`${prefix}.weight`, n.weight),
      b: layerNormed ? vector(`${prefix}.bias`, n.bias) : undefined,
    };
  };

  // Embedding-side initializers are added up front so the EmbeddingWeights can be dropped before layers load.
  let tokens: { value: string; float: boolean };
  let lmHead: { value: string; float: boolean };
  let positions = '';
  let finalNorm: NormNames;
  let ropeTable: { cos: string; sin: string } | null = null;
  {
    const e = await source.loadEmbeddings();
    tokens = storedWeight('model.embed_tokens.weight', e.tokens, [V, D]);
    // Tied embeddings share one initializer, as they share one array.
    lmHead = e.lmHead === e.tokens ? tokens : storedWeight('lm_head.weight', e.lmHead, [V, D]);
    if (!recipe.rope) {
      if (!e.positions) throw new RankwiseError('internal', 'learned-position model without position table');
      positions = weight('model.embed_positions.weight', e.positions, [spec.maxPositions, D]);
    }
    finalNorm = normWeights('model.norm', e.finalNorm);
    if (recipe.rope) {
      const t = ropeHalfTables(spec.maxPositions, d, recipe.rope);
      ropeTable = {
        // computed, not read from the checkpoint: rounding them would rotate differently from the model
        cos: weight('model.rotary_emb.cos', t.cos, [spec.maxPositions, d / 2], true),
        sin: weight('model.rotary_emb.sin', t.sin, [spec.maxPositions, d / 2], true),
      };
    }
  }

  const bs = g.op('Shape', [inputIds]);
  const batch = g.op('Slice', [bs, g.constInt64([0]), g.constInt64([1])]);
  // 16-bit tables are gathered as stored and only the rows cast: a float32 copy of a 128K-row table would
  // live through the whole run
  let x = scaleEmbedding(
    b,
    toFloat({ ...tokens, value: g.op('Gather', [tokens.value, inputIds], { axis: attr.i(0) }) }),
  );
  if (positions) x = g.op('Add', [x, tableRows(g, positions, positionIds, spec.maxPositions)]);
  x = g.op('Reshape', [x, g.constInt64([-1, D])]);

  // Key j (a cache slot) is visible to new token i iff it is not padding and j ≤ q = past + i; within a
  // sliding window W also q − j < W, counted in slots as Hugging Face counts them.
  const scalarDim = (t: string, axis: number) =>
    g.op('Gather', [g.op('Shape', [t]), g.constInt64([axis], [])], { axis: attr.i(0) });
  const total = scalarDim(mask, 1);
  const seq = scalarDim(inputIds, 1);
  const zero = g.constInt64([0], []);
  const one = g.constInt64([1], []);
  const keyIndex = g.op('Range', [zero, total, one]);
  const queryIndex = g.op('Unsqueeze', [
    g.op('Add', [g.op('Range', [zero, seq, one]), g.op('Sub', [total, seq])]),
    g.constInt64([1]),
  ]);
  const causal = g.op('LessOrEqual', [keyIndex, queryIndex]);
  const notPad = g.op('Unsqueeze', [g.op('Cast', [mask], { to: attr.i(DataType.BOOL) }), g.constInt64([1])]);
  const causalVisible = g.op('And', [causal, notPad]);
  const maskAdds = new Map<number | null, string>();
  /** The additive mask [B, 1, 1, S, T] of a layer's window (null: causal), built once per window. */
  const maskFor = (window: number | null) => {
    let m = maskAdds.get(window);
    if (!m) {
      let visible = causalVisible;
      if (window !== null) {
        const inWindow = g.op('Less', [g.op('Sub', [queryIndex, keyIndex]), g.constInt64([window], [])]);
        visible = g.op('And', [visible, inWindow]);
      }
      const additive = g.op('Where', [visible, g.constFloat([0], []), g.constFloat([-1e30], [])]);
      m = g.op('Unsqueeze', [additive, g.constInt64([1, 2])]);
      maskAdds.set(window, m);
    }
    return m;
  };

  // The rotate_half tables [..., d] of positions [...]: cos = [c, c], sin = [−s, s].
  const ropeFromPositions = (table: { cos: string; sin: string }, pos: string) => {
    const c = tableRows(g, table.cos, pos, spec.maxPositions);
    const s = tableRows(g, table.sin, pos, spec.maxPositions);
    return {
      cos: g.op('Concat', [c, c], { axis: attr.i(-1) }),
      sin: g.op('Concat', [g.op('Neg', [s]), s], { axis: attr.i(-1) }),
    };
  };
  /**
   * The thin space's tables [B, S, 1, r] of the query positions (runtime/thin-rope.ts): the columns of the
   * planes kept, cut from the same tables, and an odd r's unrotated column (cos = the attention factor).
   */
  let thinRows: { c: string; s: string } | null = null;
  const thinRopeTables = (table: { cos: string; sin: string }, planes: number[], r: number) => {
    // the rows of the query positions, gathered once for every thin layer
    thinRows ??= {
      c: tableRows(g, table.cos, positionIds, spec.maxPositions),
      s: tableRows(g, table.sin, positionIds, spec.maxPositions),
    };
    const { c, s } = thinRows;
    const cosParts: string[] = [];
    const sinParts: string[] = [];
    if (planes.length > 0) {
      const columns = (t: string) => g.op('Gather', [t, g.constInt64(planes)], { axis: attr.i(-1) });
      const [cT, sT] = [columns(c), columns(s)];
      cosParts.push(cT, cT);
      sinParts.push(g.op('Neg', [sT]), sT);
    }
    if (r % 2 === 1) {
      const zero = g.op('Mul', [
        g.op('Slice', [c, g.constInt64([0]), g.constInt64([1]), g.constInt64([-1])]),
        g.constFloat([0], []),
      ]);
      cosParts.push(g.op('Add', [zero, g.constFloat([recipe.rope!.attentionFactor], [])]));
      sinParts.push(zero);
    }
    const joined = (parts: string[]) =>
      g.op('Unsqueeze', [
        parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: attr.i(-1) }),
        g.constInt64([2]),
      ]);
    return { cos: joined(cosParts), sin: joined(sinParts) };
  };
  let queryRope: { cos: string; sin: string } | null = null;
  if (ropeTable) {
    const t = ropeFromPositions(ropeTable, positionIds);
    const perHead = (v: string) => g.op('Unsqueeze', [v, g.constInt64([2])]);
    queryRope = { cos: perHead(t.cos), sin: perHead(t.sin) };
  }
  // Pre-RoPE layers rotate every cached key again; their positions follow Hugging Face's padding rule.
  let keyRope: { cos: string; sin: string } | null = null;
  const keyRopeTables = (table: { cos: string; sin: string }) => {
    if (!keyRope) {
      const cumsum = g.op('CumSum', [mask, g.constInt64([1], [])]);
      const keyPos = g.op('Max', [g.op('Sub', [cumsum, one]), zero]);
      const t = ropeFromPositions(table, keyPos);
      const perHead = (v: string) => g.op('Unsqueeze', [v, g.constInt64([1])]);
      keyRope = { cos: perHead(t.cos), sin: perHead(t.sin) };
    }
    return keyRope;
  };

  const cache16 = precision.cache === 'float16';
  const cacheType = cache16 ? DataType.FLOAT16 : DataType.FLOAT;
  // New keys and values are rounded before they join the past, and attention reads only what the cache
  // holds, so a prefilled prompt and the same tokens decoded one by one see the same numbers.
  const intoCache = (t: string) => (cache16 ? g.op('Cast', [t], { to: attr.i(DataType.FLOAT16) }) : t);
  const fromCache = (t: string) => (cache16 ? g.op('Cast', [t], { to: attr.i(DataType.FLOAT) }) : t);
  const presents: { name: string; value: string; width: number }[] = [];
  for (let i = 0; i < spec.numLayers; i++) {
    const layer = await source.loadNarrowLayer(i);
    const prefix = `model.layers.${i}`;
    const w = layer.weights;
    const shape = attentionShape(layer.layout, d);
    const space = shape.keysCompressed ? layer.layout.keySpace : 'none';
    if (space === 'folded' && recipe.rope) {
      throw new RankwiseError('internal', `layer ${i}: folded keys cannot carry RoPE`);
    }
    const lin = (
      name: string,
      l: Linear | undefined,
      out: number,
      inp: number,
      bias: boolean,
    ): LinearNames => {
      if (!l) throw new RankwiseError('internal', `layer ${i}: the exported decoder lacks ${name}`);
      if (l.out !== out || l.in !== inp) {
        throw new RankwiseError(
          'internal',
          `layer ${i}: ${name} is [${l.out}, ${l.in}], its layout needs [${out}, ${inp}]`,
        );
      }
      return {
        w: weight(`${prefix}.${name}.weight`, l.weight, [out, inp]),
        b: bias ? vector(`${prefix}.${name}.bias`, l.bias) : undefined,
      };
    };
    const basis = (name: string, data: Float32Array | undefined, dims: number[]) =>
      data ? weight(`${prefix}.self_attn.${name}`, data, dims) : '';
    const r = shape.kCached;
    const kBasis = shape.kBasis ? basis('k_basis', layer.kBasis, [Hkv, d, r]) : '';
    // [H_kv, 1, d, r] broadcasts over the G query heads of each KV head.
    const qBasis = shape.qBasis ? basis('q_basis', layer.qBasis, [Hkv, 1, d, r]) : '';
    if ((shape.kBasis && !kBasis) || (shape.qBasis && !qBasis)) {
      throw new RankwiseError('internal', `layer ${i}: ${space} keys without their basis`);
    }
    const qW = shape.qWidth;
    const kW = shape.kWidth;
    const vW = shape.vWidth;
    // A per-head norm needs whole heads: a narrowed q_proj or k_proj leaves it nothing to normalise.
    if (recipe.qkNorm && (qW !== d || kW !== d)) {
      throw new RankwiseError(
        'internal',
        `layer ${i}: per-head q/k norms cannot follow ${space} keys narrowed to ${kW} of ${d}`,
      );
    }
    const F = spec.intermediateSize;
    const qkv = recipe.bias.qkv;
    const mlpBias = recipe.bias.mlp;
    const headNormWeight = (name: string, n: Norm | undefined) =>
      recipe.qkNorm ? vector(`${prefix}.self_attn.${name}.weight`, n?.weight) : undefined;
    // Gemma 2's names where its extra norms exist: there post_attention_layernorm follows attention.
    const names = recipe.postNorms
      ? {
          post: 'post_attention_layernorm',
          mlp: 'pre_feedforward_layernorm',
          postMlp: 'post_feedforward_layernorm',
        }
      : { post: '', mlp: 'post_attention_layernorm', postMlp: '' };
    const weights = {
      attnNorm: normWeights(`${prefix}.input_layernorm`, w.attnNorm),
      q: lin('self_attn.q_proj', w.q, H * qW, D, qkv),
      k: lin('self_attn.k_proj', w.k, Hkv * kW, D, qkv),
      v: lin('self_attn.v_proj', w.v, Hkv * vW, D, qkv),
      o: lin('self_attn.o_proj', w.o, D, H * vW, recipe.bias.o),
      qNorm: headNormWeight('q_norm', w.qNorm),
      kNorm: headNormWeight('k_norm', w.kNorm),
      postAttnNorm: recipe.postNorms ? normWeights(`${prefix}.${names.post}`, w.postAttnNorm) : undefined,
      mlpNorm: normWeights(`${prefix}.${names.mlp}`, w.mlpNorm),
      gate: recipe.mlp.gated ? lin('mlp.gate_proj', w.gate, F, D, mlpBias) : undefined,
      up: lin('mlp.up_proj', w.up, F, D, mlpBias),
      down: lin('mlp.down_proj', w.down, D, F, mlpBias),
      postMlpNorm: recipe.postNorms ? normWeights(`${prefix}.${names.postMlp}`, w.postMlpNorm) : undefined,
    };

    // A past's last dimension is declared symbolic (`past_key_width_{i}`) and reshaped to the layer's rank
    // here, so any empty past is accepted: [B, H_kv, 0, head_dim] as transformers.js 3 and Optimum size it
    // from config.json, [B, H_kv, 0, 0] as transformers.js 4 sizes a symbolic dimension, or [B, H_kv, 0, r].
    // A non-empty past must be the layer's own presents (width r); presents keep the static width r.
    const past = (name: string, width: number, symbol: string) => {
      // [B, H_kv, P, w] → [B, H_kv, −1, r]: an empty past of any width becomes [B, H_kv, 0, r]
      const declared = g.input(name, [BATCH, Hkv, PAST, symbol], cacheType);
      return g.op('Reshape', [
        declared,
        g.op('Concat', [batch, g.constInt64([Hkv, -1, width])], { axis: attr.i(0) }),
      ]);
    };
    const pastK = past(IO.pastKey(i), r, `past_key_width_${i}`);
    const pastV = past(IO.pastValue(i), vW, `past_value_width_${i}`);
    const heads = (n: number, width: number) => shapeWith(g, bs, [n, width]);
    const toCache = (t: string) => g.op('Transpose', [t], { perm: attr.ints([0, 2, 1, 3]) });

    const h1 = norm(b, x, weights.attnNorm).out;
    let qh = projectHeads(b, h1, weights.q, heads(H, qW), weights.qNorm);
    let kh = projectHeads(b, h1, weights.k, heads(Hkv, kW), weights.kNorm);
    const vh = g.op('Reshape', [linear(g, h1, weights.v.w, weights.v.b), heads(Hkv, vW)]);
    if (space === 'thin-rope') {
      // R3: thin queries and keys turn in their own planes; keys are cached rotated, as post-RoPE ones are
      const planes = layer.layout.ropePlanes;
      if (!ropeTable || !planes)
        throw new RankwiseError('internal', `layer ${i}: thin-rope keys without RoPE planes`);
      const t = thinRopeTables(ropeTable, planes, r);
      const swap = g.constInt64(thinSwap(r));
      qh = thinRotate(b, qh, t.cos, t.sin, swap).out;
      kh = thinRotate(b, kh, t.cos, t.sin, swap).out;
    } else {
      if (queryRope && space !== 'folded') qh = rope(g, qh, queryRope.cos, queryRope.sin, d);
      // A pre-RoPE latent is cached unrotated; full keys (uncompressed, post-RoPE) are cached rotated.
      if (queryRope && space !== 'pre-rope') kh = rope(g, kh, queryRope.cos, queryRope.sin, d);
    }
    let kNew = toCache(kh);
    if (space === 'post-rope') kNew = g.op('MatMul', [kNew, kBasis]);
    const presentK = g.op('Concat', [pastK, intoCache(kNew)], { axis: attr.i(2) });
    const presentV = g.op('Concat', [pastV, intoCache(toCache(vh))], { axis: attr.i(2) });
    presents.push({ name: IO.presentKey(i), value: presentK, width: r });
    presents.push({ name: IO.presentValue(i), value: presentV, width: vW });

    let keys = fromCache(presentK);
    if (space === 'pre-rope') {
      keys = g.op('MatMul', [keys, g.op('Transpose', [kBasis], { perm: attr.ints([0, 2, 1]) })]);
      if (ropeTable) {
        const t = keyRopeTables(ropeTable);
        keys = rope(g, keys, t.cos, t.sin, d);
      }
    }
    // Grouped-query attention without repeating K and V, as in decoder-layer.ts: queries
    // [B, H_kv, G, S, w] against keys [B, H_kv, 1, w, T]; query head h = g·G + j uses KV head g.
    let q5 = g.op('Transpose', [g.op('Reshape', [qh, shapeWith(g, bs, [Hkv, G, qW])])], {
      perm: attr.ints([0, 2, 3, 1, 4]),
    });
    if (space === 'post-rope') q5 = g.op('MatMul', [q5, qBasis]);
    // The recipe's query scale is that of the original head dimension: narrowing changes no score.
    q5 = scaleQueries(b, q5);
    const kT = g.op('Unsqueeze', [
      g.op('Transpose', [keys], { perm: attr.ints([0, 1, 3, 2]) }),
      g.constInt64([2]),
    ]);
    const { ctx } = attend(
      b,
      q5,
      kT,
      g.op('Unsqueeze', [fromCache(presentV), g.constInt64([2])]),
      maskFor(layerWindow(recipe, i)),
    );
    const merged = g.op('Reshape', [
      g.op('Transpose', [ctx], { perm: attr.ints([0, 3, 1, 2, 4]) }),
      g.constInt64([-1, H * vW]),
    ]);
    const h = attentionResidual(b, x, merged, weights.o, weights.postAttnNorm).out;
    x = mlpResidual(b, h, weights).out;
  }

  const logits = capLogits(
    b,
    headLogits(g, norm(b, x, finalNorm).out, lmHead, { V, D, sliceBytes: headSliceBytes }, toFloat),
  );
  g.output(IO.logits, g.op('Reshape', [logits, shapeWith(g, bs, [V])]), [BATCH, SEQ, V]);
  for (const p of presents) g.output(p.name, p.value, [BATCH, Hkv, TOTAL, p.width], cacheType);
  return g.build(KV_DECODER_OPSET, KV_DECODER_IR_VERSION);
}
