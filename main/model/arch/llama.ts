/**
 * Llama-family adapter: llama, mistral and qwen2 share one graph (RMSNorm, RoPE with rotate_half, GQA,
 * SwiGLU) and one tensor naming scheme; they differ only in config defaults and which biases exist.
 */
import { badInput, unsupportedModel } from '../../core/errors.ts';
import type { Checkpoint } from '../checkpoint.ts';
import { attentionShape } from '../kv-layout.ts';
import type { EmbeddingWeights, LayerWeights, Linear, ModelSpec } from '../types.ts';
import {
  checkAll,
  checkLayerCount,
  checkLayerIndex,
  MAX_NORM_EPS,
  loadLinear,
  loadTensor,
  rejectUnexpected,
  requireBias,
  type FloatTensor,
} from './common.ts';
import type { ConfigFields, ExpectedTensor } from './common.ts';
import type { ArchAdapter, ArchSpec } from './registry.ts';

const layerPrefix = (i: number) => `model.layers.${i}.`;

function parseConfig(cfg: ConfigFields, modelType: string): ArchSpec {
  const file = cfg.file;
  if (cfg.has('quantization_config')) {
    throw unsupportedModel('quantized checkpoints (quantization_config) are not supported', file);
  }
  const hiddenSize = cfg.int('hidden_size');
  const numLayers = cfg.int('num_hidden_layers');
  const numHeads = cfg.int('num_attention_heads');
  const numKvHeads = cfg.optInt('num_key_value_heads', numHeads);
  const intermediateSize = cfg.int('intermediate_size');
  const vocabSize = cfg.int('vocab_size');
  const maxPositions = cfg.int('max_position_embeddings');
  if (!cfg.has('head_dim') && hiddenSize % numHeads !== 0) {
    throw badInput(
      `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} and there is no head_dim`,
      file,
    );
  }
  const headDim = cfg.optInt('head_dim', hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw badInput(
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
      file,
    );
  }
  if (headDim % 2 !== 0) throw badInput(`head_dim ${headDim} must be even for rotary embeddings`, file);

  const act = cfg.str('hidden_act', 'silu');
  if (act !== 'silu') {
    throw unsupportedModel(`hidden_act "${act}" is not supported (only silu for ${modelType})`, file);
  }
  const theta = ropeTheta(cfg);

  // Biases: llama has attention_bias (q, k, v and o together) and mlp_bias; qwen2 always has q/k/v
  // biases and nothing else; mistral has none.
  let qkvBias = false;
  let oBias = false;
  let mlpBias = false;
  if (modelType === 'llama') {
    qkvBias = oBias = cfg.bool('attention_bias', false);
    mlpBias = cfg.bool('mlp_bias', false);
  } else if (modelType === 'qwen2') {
    qkvBias = true;
  }

  return {
    modelType,
    family: 'llama',
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize,
    vocabSize,
    maxPositions,
    norm: { kind: 'rms', eps: cfg.positiveNum('rms_norm_eps', 1e-6, MAX_NORM_EPS) },
    rope: { theta },
    act: 'silu',
    qkvBias,
    oBias,
    mlpBias,
    block: {
      norm: { kind: 'rms', eps: cfg.positiveNum('rms_norm_eps', 1e-6, MAX_NORM_EPS), offset: 0 },
      postNorms: false,
      qkNorm: false,
      mlp: { gated: true, act: 'silu' },
      bias: { qkv: qkvBias, o: oBias, mlp: mlpBias },
      rope: { theta, invFreq: defaultInvFreq(theta, headDim), attentionFactor: 1, scaling: 'default' },
      queryScale: 1 / Math.sqrt(headDim),
      attnSoftcap: null,
      finalSoftcap: null,
      embedScale: 1,
      slidingWindow: new Array<number | null>(numLayers).fill(null),
    },
    tieWordEmbeddings: cfg.bool('tie_word_embeddings', false),
  };
}

/**
 * Plain RoPE only: any scaling (linear, dynamic, yarn, llama3, longrope) changes the frequencies and is
 * not implemented. transformers ≥ 4.56 may carry θ in `rope_parameters` instead of `rope_theta`.
 */
function ropeTheta(cfg: ConfigFields): number {
  const scaling = cfg.get('rope_scaling');
  if (scaling !== undefined && !isDefaultRope(scaling)) {
    throw unsupportedModel(
      `rope_scaling ${JSON.stringify(scaling)} is not supported (plain RoPE only)`,
      cfg.file,
    );
  }
  const params = cfg.get('rope_parameters');
  if (params !== undefined) {
    if (!isDefaultRope(params)) {
      throw unsupportedModel(
        `rope_parameters ${JSON.stringify(params)} is not supported (plain RoPE only)`,
        cfg.file,
      );
    }
    const t = (params as Record<string, unknown>).rope_theta;
    if (typeof t === 'number' && t > 0 && Number.isFinite(t)) return t;
    if (t !== undefined && t !== null) {
      throw badInput(`rope_parameters.rope_theta must be a positive number, found ${String(t)}`, cfg.file);
    }
  }
  return cfg.positiveNum('rope_theta', 10000);
}

/** θ^(−2i/d) for each of the d/2 rotated pairs: plain RoPE's inverse frequencies. */
function defaultInvFreq(theta: number, d: number): number[] {
  return Array.from({ length: d / 2 }, (_, i) => Math.pow(theta, (-2 * i) / d));
}

function isDefaultRope(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const type = o.rope_type ?? o.type;
  return type === 'default' && (o.factor === undefined || o.factor === null || o.factor === 1);
}

/** Rows of q/k/v_proj and columns of o_proj: the model's, or the narrowed ones of a compressed checkpoint. */
function attentionWidths(spec: ModelSpec, i: number) {
  const s = attentionShape(spec.kvCompression?.[i], spec.headDim);
  return {
    shape: s,
    q: spec.numHeads * s.qWidth,
    k: spec.numKvHeads * s.kWidth,
    v: spec.numKvHeads * s.vWidth,
    o: spec.numHeads * s.vWidth,
  };
}

function layerTensors(spec: ModelSpec, i: number): ExpectedTensor[] {
  const p = layerPrefix(i);
  const D = spec.hiddenSize;
  const w = attentionWidths(spec, i);
  const I = spec.intermediateSize;
  const t: ExpectedTensor[] = [
    { name: `${p}input_layernorm.weight`, shape: [D] },
    { name: `${p}self_attn.q_proj.weight`, shape: [w.q, D] },
    { name: `${p}self_attn.k_proj.weight`, shape: [w.k, D] },
    { name: `${p}self_attn.v_proj.weight`, shape: [w.v, D] },
    { name: `${p}self_attn.o_proj.weight`, shape: [D, w.o] },
    { name: `${p}post_attention_layernorm.weight`, shape: [D] },
    { name: `${p}mlp.gate_proj.weight`, shape: [I, D] },
    { name: `${p}mlp.up_proj.weight`, shape: [I, D] },
    { name: `${p}mlp.down_proj.weight`, shape: [D, I] },
  ];
  const basis = [spec.numKvHeads, spec.headDim, w.shape.kCached];
  if (w.shape.kBasis) t.push({ name: `${p}self_attn.k_basis`, shape: basis });
  if (w.shape.qBasis) t.push({ name: `${p}self_attn.q_basis`, shape: basis });
  if (spec.qkvBias) {
    t.push(
      { name: `${p}self_attn.q_proj.bias`, shape: [w.q] },
      { name: `${p}self_attn.k_proj.bias`, shape: [w.k] },
      { name: `${p}self_attn.v_proj.bias`, shape: [w.v] },
    );
  }
  if (spec.oBias) t.push({ name: `${p}self_attn.o_proj.bias`, shape: [D] });
  if (spec.mlpBias) {
    t.push(
      { name: `${p}mlp.gate_proj.bias`, shape: [I] },
      { name: `${p}mlp.up_proj.bias`, shape: [I] },
      { name: `${p}mlp.down_proj.bias`, shape: [D] },
    );
  }
  return t;
}

function expectedTensors(_ckpt: Checkpoint, spec: ModelSpec): ExpectedTensor[] {
  const V = spec.vocabSize;
  const D = spec.hiddenSize;
  const t: ExpectedTensor[] = [
    { name: 'model.embed_tokens.weight', shape: [V, D] },
    { name: 'model.norm.weight', shape: [D] },
  ];
  if (!spec.tieWordEmbeddings) t.push({ name: 'lm_head.weight', shape: [V, D] });
  for (let i = 0; i < spec.numLayers; i++) t.push(...layerTensors(spec, i));
  return t;
}

const LAYER_NAME = /^model\.layers\.(\d+)\./;

function checkCheckpoint(ckpt: Checkpoint, spec: ModelSpec): void {
  checkLayerCount(
    ckpt,
    spec,
    'num_hidden_layers',
    (name) => {
      const m = LAYER_NAME.exec(name);
      return m ? Number(m[1]) : null;
    },
    (i) => `model.layers.${i}`,
  );
  checkAll(ckpt, expectedTensors(ckpt, spec));
  for (let i = 0; i < spec.numLayers; i++) {
    const p = layerPrefix(i);
    if (!spec.qkvBias) {
      const names = ['q', 'k', 'v'].map((x) => `${p}self_attn.${x}_proj.bias`);
      rejectUnexpected(ckpt, names, `the config gives ${spec.modelType} no q/k/v biases`);
    }
    if (!spec.oBias) rejectUnexpected(ckpt, [`${p}self_attn.o_proj.bias`], 'the config gives o_proj no bias');
    if (!spec.mlpBias) {
      const names = ['gate', 'up', 'down'].map((x) => `${p}mlp.${x}_proj.bias`);
      rejectUnexpected(ckpt, names, 'the config gives the MLP no biases');
    }
  }
}

async function loadLayer(ckpt: Checkpoint, spec: ModelSpec, i: number): Promise<LayerWeights> {
  checkLayerIndex(spec, i, ckpt.dir);
  const p = layerPrefix(i);
  const D = spec.hiddenSize;
  const w = attentionWidths(spec, i);
  const I = spec.intermediateSize;
  const [attnNorm, qp, kp, vp, op, mlpNorm, gate, up, down] = await Promise.all([
    loadTensor(ckpt, `${p}input_layernorm.weight`, [D]),
    loadLinear(ckpt, `${p}self_attn.q_proj`, w.q, D, spec.qkvBias),
    loadLinear(ckpt, `${p}self_attn.k_proj`, w.k, D, spec.qkvBias),
    loadLinear(ckpt, `${p}self_attn.v_proj`, w.v, D, spec.qkvBias),
    loadLinear(ckpt, `${p}self_attn.o_proj`, D, w.o, spec.oBias),
    loadTensor(ckpt, `${p}post_attention_layernorm.weight`, [D]),
    loadLinear(ckpt, `${p}mlp.gate_proj`, I, D, spec.mlpBias),
    loadLinear(ckpt, `${p}mlp.up_proj`, I, D, spec.mlpBias),
    loadLinear(ckpt, `${p}mlp.down_proj`, D, I, spec.mlpBias),
  ]);
  return {
    attnNorm: { weight: attnNorm },
    q: qp,
    k: kp,
    v: vp,
    o: op,
    mlpNorm: { weight: mlpNorm },
    gate,
    up,
    down,
  };
}

/** The attention projections as stored: nn.Linear [out, in], unchanged names, narrowed shapes. */
function attentionTensors(_ckpt: Checkpoint, spec: ModelSpec, i: number, w: LayerWeights): FloatTensor[] {
  const p = `${layerPrefix(i)}self_attn.`;
  const t: FloatTensor[] = [];
  const linear = (name: string, l: Linear, bias: boolean) => {
    t.push({ name: `${p}${name}.weight`, shape: [l.out, l.in], data: l.weight });
    if (bias) t.push({ name: `${p}${name}.bias`, shape: [l.out], data: requireBias(l, name) });
  };
  linear('q_proj', w.q, spec.qkvBias);
  linear('k_proj', w.k, spec.qkvBias);
  linear('v_proj', w.v, spec.qkvBias);
  linear('o_proj', w.o, spec.oBias);
  return t;
}

async function loadEmbeddings(ckpt: Checkpoint, spec: ModelSpec): Promise<EmbeddingWeights> {
  const V = spec.vocabSize;
  const D = spec.hiddenSize;
  const [tokens, finalNorm] = await Promise.all([
    loadTensor(ckpt, 'model.embed_tokens.weight', [V, D]),
    loadTensor(ckpt, 'model.norm.weight', [D]),
  ]);
  const lmHead = spec.tieWordEmbeddings ? tokens : await loadTensor(ckpt, 'lm_head.weight', [V, D]);
  return { tokens, finalNorm: { weight: finalNorm }, lmHead };
}

export const llamaAdapter: ArchAdapter = {
  family: 'llama',
  modelTypes: ['llama', 'mistral', 'qwen2'],
  parseConfig,
  dtypeProbe: () => `${layerPrefix(0)}self_attn.q_proj.weight`,
  expectedTensors,
  checkCheckpoint,
  // old Llama checkpoints stored the RoPE frequency table as a buffer
  isParameter: (name) => !name.endsWith('rotary_emb.inv_freq'),
  lmHeadName: 'lm_head.weight',
  loadLayer,
  loadEmbeddings,
  attentionPrefix: (_ckpt, i) => `${layerPrefix(i)}self_attn.`,
  attentionTensors,
};
