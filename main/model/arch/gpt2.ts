/**
 * GPT-2 adapter. GPT-2 stores its projections as Conv1D, i.e. [in, out] (the transpose of nn.Linear),
 * and fuses q, k and v into one `c_attn` of [D, 3D]; the codec splits and transposes so the rest of the
 * engine sees [out, in] linears like every other model. Checkpoints saved from GPT2Model have bare names
 * (`h.0.…`), those from GPT2LMHeadModel prefix them with `transformer.`; both are accepted.
 */
import { badInput, unsupportedModel } from '../../core/errors.ts';
import { defineArch } from './adapter.ts';
import type { ArchSpec } from './adapter.ts';
import type { ArchCodec } from './codec.ts';
import { MAX_NORM_EPS } from './common.ts';
import type { ConfigFields } from './common.ts';
import { parseActivation } from './decoder.ts';

const codec: ArchCodec = {
  root: (has) => (has('transformer.wte.weight') || has('transformer.h.0.ln_1.weight') ? 'transformer.' : ''),
  writeRoot: 'transformer.',
  layers: 'h.',
  layerModules: [
    { name: 'ln_1', fields: ['attnNorm'] },
    { name: 'attn.c_attn', fields: ['q', 'k', 'v'], conv1d: true },
    { name: 'attn.c_proj', fields: ['o'], conv1d: true },
    { name: 'ln_2', fields: ['mlpNorm'] },
    { name: 'mlp.c_fc', fields: ['up'], conv1d: true },
    { name: 'mlp.c_proj', fields: ['down'], conv1d: true },
  ],
  attention: 'attn.',
  embeddingModules: [
    { name: 'wte', fields: ['tokens'] },
    { name: 'wpe', fields: ['positions'] },
    { name: 'ln_f', fields: ['finalNorm'] },
    // GPT2LMHeadModel keeps its head outside `transformer.`
    { name: 'lm_head', fields: ['lmHead'], unrooted: true },
  ],
  layerCountField: 'n_layer',
};

function parseConfig(cfg: ConfigFields, modelType: string): ArchSpec {
  const file = cfg.file;
  const hiddenSize = cfg.int('n_embd', 'hidden_size');
  const numLayers = cfg.int('n_layer', 'num_hidden_layers');
  const numHeads = cfg.int('n_head', 'num_attention_heads');
  const vocabSize = cfg.int('vocab_size');
  const maxPositions = cfg.int('n_positions', 'n_ctx', 'max_position_embeddings');
  if (hiddenSize % numHeads !== 0) {
    throw badInput(`n_embd ${hiddenSize} is not divisible by n_head ${numHeads}`, file);
  }
  const act = parseActivation(cfg, 'activation_function', 'gelu_new');
  // These change the attention scores in ways the block recipe does not express.
  if (!cfg.bool('scale_attn_weights', true)) {
    throw unsupportedModel('scale_attn_weights=false is not supported', file);
  }
  if (cfg.bool('scale_attn_by_inverse_layer_idx', false)) {
    throw unsupportedModel('scale_attn_by_inverse_layer_idx=true is not supported', file);
  }
  if (cfg.bool('add_cross_attention', false)) {
    throw unsupportedModel('add_cross_attention=true (encoder-decoder GPT-2) is not supported', file);
  }
  const headDim = hiddenSize / numHeads;
  return {
    modelType,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads: numHeads,
    headDim,
    intermediateSize: cfg.optInt('n_inner', 4 * hiddenSize),
    vocabSize,
    maxPositions,
    tieWordEmbeddings: cfg.bool('tie_word_embeddings', true),
    block: {
      norm: { kind: 'layer', eps: cfg.positiveNum('layer_norm_epsilon', 1e-5, MAX_NORM_EPS), offset: 0 },
      postNorms: false,
      qkNorm: false,
      mlp: { gated: false, act },
      bias: { qkv: true, o: true, mlp: true },
      rope: null,
      queryScale: 1 / Math.sqrt(headDim),
      attnSoftcap: null,
      finalSoftcap: null,
      embedScale: 1,
      slidingWindow: new Array<number | null>(numLayers).fill(null),
    },
  };
}

export const gpt2Adapter = defineArch({
  modelTypes: ['gpt2'],
  codec,
  parseConfig,
  // older checkpoints store the causal mask (`attn.bias`, `attn.masked_bias`) as buffers
  isParameter: (name) => !/(^|\.)attn\.(masked_)?bias$/.test(name),
  synthetic: {
    tokenizer: 'gpt2',
    config(s, _modelType, fail) {
      if (s.numKvHeads !== s.numHeads)
        fail('gpt2 has no grouped-query attention: numKvHeads must equal numHeads');
      if (s.headDim * s.numHeads !== s.hiddenSize) fail('gpt2 needs headDim = hiddenSize / numHeads');
      if (s.qkvBias === false) fail('gpt2 always has q/k/v biases (qkvBias must be true)');
      return {
        architectures: ['GPT2LMHeadModel'],
        n_embd: s.hiddenSize,
        n_layer: s.numLayers,
        n_head: s.numHeads,
        n_positions: s.maxPositions,
        n_ctx: s.maxPositions,
        n_inner: s.intermediateSize === 4 * s.hiddenSize ? null : s.intermediateSize,
        activation_function: 'gelu_new',
        layer_norm_epsilon: 1e-5,
        scale_attn_weights: true,
        attn_pdrop: 0,
        embd_pdrop: 0,
        resid_pdrop: 0,
      };
    },
  },
});
