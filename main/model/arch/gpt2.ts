/**
 * GPT-2 adapter. GPT-2 stores its projections as Conv1D, i.e. [in, out] (the transpose of nn.Linear),
 * and fuses q, k and v into one `c_attn` of [D, 3D]; we split and transpose so the rest of the engine
 * sees [out, in] linears like every other model. Checkpoints saved from GPT2Model have bare names
 * (`h.0.…`), those from GPT2LMHeadModel prefix them with `transformer.`; both are accepted.
 */
import { badInput, unsupportedModel } from '../../core/errors.ts';
import type { Checkpoint } from '../checkpoint.ts';
import { attentionShape } from '../kv-layout.ts';
import type { EmbeddingWeights, LayerWeights, Linear, ModelSpec } from '../types.ts';
import {
  checkAll,
  checkLayerCount,
  checkLayerIndex,
  loadTensor,
  MAX_NORM_EPS,
  requireBias,
  transpose,
} from './common.ts';
import type { ConfigFields, ExpectedTensor, FloatTensor } from './common.ts';
import type { ArchAdapter, ArchSpec } from './registry.ts';

/** `gelu_pytorch_tanh` is the same tanh approximation as `gelu_new`. */
const GELU_TANH = ['gelu_new', 'gelu_pytorch_tanh'];

function parseConfig(cfg: ConfigFields, modelType: string): ArchSpec {
  const file = cfg.file;
  if (cfg.has('quantization_config')) {
    throw unsupportedModel('quantized checkpoints (quantization_config) are not supported', file);
  }
  const hiddenSize = cfg.int('n_embd', 'hidden_size');
  const numLayers = cfg.int('n_layer', 'num_hidden_layers');
  const numHeads = cfg.int('n_head', 'num_attention_heads');
  const vocabSize = cfg.int('vocab_size');
  const maxPositions = cfg.int('n_positions', 'n_ctx', 'max_position_embeddings');
  if (hiddenSize % numHeads !== 0) {
    throw badInput(`n_embd ${hiddenSize} is not divisible by n_head ${numHeads}`, file);
  }
  const act = cfg.str('activation_function', 'gelu_new');
  if (!GELU_TANH.includes(act)) {
    throw unsupportedModel(
      `activation_function "${act}" is not supported (only ${GELU_TANH.join(' or ')})`,
      file,
    );
  }
  // These change the attention scores in ways the graph builder does not implement.
  if (!cfg.bool('scale_attn_weights', true)) {
    throw unsupportedModel('scale_attn_weights=false is not supported', file);
  }
  if (cfg.bool('scale_attn_by_inverse_layer_idx', false)) {
    throw unsupportedModel('scale_attn_by_inverse_layer_idx=true is not supported', file);
  }
  if (cfg.bool('add_cross_attention', false)) {
    throw unsupportedModel('add_cross_attention=true (encoder-decoder GPT-2) is not supported', file);
  }
  return {
    modelType,
    family: 'gpt2',
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    intermediateSize: cfg.optInt('n_inner', 4 * hiddenSize),
    vocabSize,
    maxPositions,
    norm: { kind: 'layer', eps: cfg.positiveNum('layer_norm_epsilon', 1e-5, MAX_NORM_EPS) },
    rope: null,
    act: 'gelu_new',
    qkvBias: true,
    oBias: true,
    mlpBias: true,
    block: {
      norm: { kind: 'layer', eps: cfg.positiveNum('layer_norm_epsilon', 1e-5, MAX_NORM_EPS), offset: 0 },
      postNorms: false,
      qkNorm: false,
      mlp: { gated: false, act: 'gelu_tanh' },
      bias: { qkv: true, o: true, mlp: true },
      rope: null,
      queryScale: 1 / Math.sqrt(hiddenSize / numHeads),
      attnSoftcap: null,
      finalSoftcap: null,
      embedScale: 1,
      slidingWindow: new Array<number | null>(numLayers).fill(null),
    },
    tieWordEmbeddings: cfg.bool('tie_word_embeddings', true),
  };
}

/** `transformer.` when the checkpoint came from GPT2LMHeadModel, '' when from GPT2Model. */
function prefixOf(ckpt: Checkpoint): string {
  return ckpt.has('transformer.wte.weight') || ckpt.has('transformer.h.0.ln_1.weight') ? 'transformer.' : '';
}

function layerTensors(pre: string, spec: ModelSpec, i: number): ExpectedTensor[] {
  const p = `${pre}h.${i}.`;
  const D = spec.hiddenSize;
  const I = spec.intermediateSize;
  const [q, k, v] = qkvWidths(spec, i);
  const o = (v / spec.numKvHeads) * spec.numHeads;
  return [
    { name: `${p}ln_1.weight`, shape: [D] },
    { name: `${p}ln_1.bias`, shape: [D] },
    { name: `${p}attn.c_attn.weight`, shape: [D, q + k + v] },
    { name: `${p}attn.c_attn.bias`, shape: [q + k + v] },
    { name: `${p}attn.c_proj.weight`, shape: [o, D] },
    { name: `${p}attn.c_proj.bias`, shape: [D] },
    { name: `${p}ln_2.weight`, shape: [D] },
    { name: `${p}ln_2.bias`, shape: [D] },
    { name: `${p}mlp.c_fc.weight`, shape: [D, I] },
    { name: `${p}mlp.c_fc.bias`, shape: [I] },
    { name: `${p}mlp.c_proj.weight`, shape: [I, D] },
    { name: `${p}mlp.c_proj.bias`, shape: [D] },
  ];
}

function expectedTensors(ckpt: Checkpoint, spec: ModelSpec): ExpectedTensor[] {
  const pre = prefixOf(ckpt);
  const D = spec.hiddenSize;
  const t: ExpectedTensor[] = [
    { name: `${pre}wte.weight`, shape: [spec.vocabSize, D] },
    { name: `${pre}wpe.weight`, shape: [spec.maxPositions, D] },
    { name: `${pre}ln_f.weight`, shape: [D] },
    { name: `${pre}ln_f.bias`, shape: [D] },
  ];
  if (!spec.tieWordEmbeddings) t.push({ name: 'lm_head.weight', shape: [spec.vocabSize, D] });
  for (let i = 0; i < spec.numLayers; i++) t.push(...layerTensors(pre, spec, i));
  return t;
}

const LAYER_NAME = /^(?:transformer\.)?h\.(\d+)\./;

function checkCheckpoint(ckpt: Checkpoint, spec: ModelSpec): void {
  const pre = prefixOf(ckpt);
  checkLayerCount(
    ckpt,
    spec,
    'n_layer',
    (name) => {
      const m = LAYER_NAME.exec(name);
      return m ? Number(m[1]) : null;
    },
    (i) => `${pre}h.${i}`,
  );
  checkAll(ckpt, expectedTensors(ckpt, spec));
}

/**
 * Splits a Conv1D c_attn weight [D, Σwidths] (row = input feature, columns q | k | v) into nn.Linear
 * weights [width, D] (row = output feature): column block b becomes its transpose. A Rankwise checkpoint
 * narrows the blocks (widths q, k, v differ); the original has D each.
 */
export function splitFusedQkv(
  w: Float32Array,
  D: number,
  widths: readonly [number, number, number] = [D, D, D],
): [Float32Array, Float32Array, Float32Array] {
  const stride = widths[0] + widths[1] + widths[2];
  let start = 0;
  const parts = widths.map((width) => {
    const part = new Float32Array(width * D);
    for (let i = 0; i < D; i++) {
      const row = i * stride + start;
      for (let o = 0; o < width; o++) part[o * D + i] = w[row + o];
    }
    start += width;
    return part;
  });
  return parts as [Float32Array, Float32Array, Float32Array];
}

/** The inverse of splitFusedQkv: nn.Linear weights [width_b, D] → one Conv1D [D, Σwidths]. */
export function fuseQkv(parts: readonly Linear[], D: number): Float32Array {
  const stride = parts.reduce((a, p) => a + p.out, 0);
  const w = new Float32Array(D * stride);
  let start = 0;
  for (const p of parts) {
    for (let o = 0; o < p.out; o++) {
      for (let i = 0; i < D; i++) w[i * stride + start + o] = p.weight[o * D + i];
    }
    start += p.out;
  }
  return w;
}

/** Per-head widths of q, k and v in layer i (narrowed in a compressed checkpoint), times the head count. */
function qkvWidths(spec: ModelSpec, i: number): [number, number, number] {
  const s = attentionShape(spec.kvCompression?.[i], spec.headDim);
  return [spec.numHeads * s.qWidth, spec.numKvHeads * s.kWidth, spec.numKvHeads * s.vWidth];
}

/** A Conv1D (stored [in, out]) as an nn.Linear [out, in]. */
function conv1d(weight: Float32Array, bias: Float32Array, inn: number, out: number): Linear {
  return { weight: transpose(weight, inn, out), bias, out, in: inn };
}

async function loadLayer(ckpt: Checkpoint, spec: ModelSpec, i: number): Promise<LayerWeights> {
  checkLayerIndex(spec, i, ckpt.dir);
  const p = `${prefixOf(ckpt)}h.${i}.`;
  const D = spec.hiddenSize;
  const I = spec.intermediateSize;
  const widths = qkvWidths(spec, i);
  const fused = widths[0] + widths[1] + widths[2];
  const o = (widths[2] / spec.numKvHeads) * spec.numHeads;
  const [ln1w, ln1b, attnW, attnB, projW, projB, ln2w, ln2b, fcW, fcB, fc2W, fc2B] = await Promise.all([
    loadTensor(ckpt, `${p}ln_1.weight`, [D]),
    loadTensor(ckpt, `${p}ln_1.bias`, [D]),
    loadTensor(ckpt, `${p}attn.c_attn.weight`, [D, fused]),
    loadTensor(ckpt, `${p}attn.c_attn.bias`, [fused]),
    loadTensor(ckpt, `${p}attn.c_proj.weight`, [o, D]),
    loadTensor(ckpt, `${p}attn.c_proj.bias`, [D]),
    loadTensor(ckpt, `${p}ln_2.weight`, [D]),
    loadTensor(ckpt, `${p}ln_2.bias`, [D]),
    loadTensor(ckpt, `${p}mlp.c_fc.weight`, [D, I]),
    loadTensor(ckpt, `${p}mlp.c_fc.bias`, [I]),
    loadTensor(ckpt, `${p}mlp.c_proj.weight`, [I, D]),
    loadTensor(ckpt, `${p}mlp.c_proj.bias`, [D]),
  ]);
  const [qw, kw, vw] = splitFusedQkv(attnW, D, widths);
  const lin = (weight: Float32Array, start: number, out: number): Linear => ({
    weight,
    bias: attnB.slice(start, start + out),
    out,
    in: D,
  });
  return {
    attnNorm: { weight: ln1w, bias: ln1b },
    q: lin(qw, 0, widths[0]),
    k: lin(kw, widths[0], widths[1]),
    v: lin(vw, widths[0] + widths[1], widths[2]),
    o: conv1d(projW, projB, o, D),
    mlpNorm: { weight: ln2w, bias: ln2b },
    up: conv1d(fcW, fcB, D, I),
    down: conv1d(fc2W, fc2B, I, D),
  };
}

async function loadEmbeddings(ckpt: Checkpoint, spec: ModelSpec): Promise<EmbeddingWeights> {
  const pre = prefixOf(ckpt);
  const V = spec.vocabSize;
  const D = spec.hiddenSize;
  const [tokens, positions, lnw, lnb] = await Promise.all([
    loadTensor(ckpt, `${pre}wte.weight`, [V, D]),
    loadTensor(ckpt, `${pre}wpe.weight`, [spec.maxPositions, D]),
    loadTensor(ckpt, `${pre}ln_f.weight`, [D]),
    loadTensor(ckpt, `${pre}ln_f.bias`, [D]),
  ]);
  const lmHead = spec.tieWordEmbeddings ? tokens : await loadTensor(ckpt, 'lm_head.weight', [V, D]);
  return { tokens, positions, finalNorm: { weight: lnw, bias: lnb }, lmHead };
}

/** q, k and v fused back into c_attn (Conv1D [D, q+k+v]) and o_proj as c_proj (Conv1D [in, D]). */
function attentionTensors(ckpt: Checkpoint, spec: ModelSpec, i: number, w: LayerWeights): FloatTensor[] {
  const p = `${prefixOf(ckpt)}h.${i}.attn.`;
  const D = spec.hiddenSize;
  const parts = [w.q, w.k, w.v];
  const width = parts.reduce((a, l) => a + l.out, 0);
  const bias = new Float32Array(width);
  let start = 0;
  for (const [n, l] of [
    ['q', w.q],
    ['k', w.k],
    ['v', w.v],
  ] as const) {
    bias.set(requireBias(l, `${n} projection`), start);
    start += l.out;
  }
  return [
    { name: `${p}c_attn.weight`, shape: [D, width], data: fuseQkv(parts, D) },
    { name: `${p}c_attn.bias`, shape: [width], data: bias },
    { name: `${p}c_proj.weight`, shape: [w.o.in, D], data: transpose(w.o.weight, w.o.out, w.o.in) },
    { name: `${p}c_proj.bias`, shape: [D], data: requireBias(w.o, 'output projection') },
  ];
}

export const gpt2Adapter: ArchAdapter = {
  family: 'gpt2',
  modelTypes: ['gpt2'],
  parseConfig,
  dtypeProbe: (ckpt) => `${prefixOf(ckpt)}h.0.attn.c_attn.weight`,
  expectedTensors,
  checkCheckpoint,
  // older checkpoints store the causal mask (`attn.bias`, `attn.masked_bias`) as buffers
  isParameter: (name) => !/(^|\.)attn\.(masked_)?bias$/.test(name),
  lmHeadName: 'lm_head.weight',
  loadLayer,
  loadEmbeddings,
  attentionPrefix: (ckpt, i) => `${prefixOf(ckpt)}h.${i}.attn.`,
  attentionTensors,
};
