/**
 * Gemma 2. RMSNorm scales by (1 + w); four norms per layer — input_layernorm before attention,
 * post_attention_layernorm on the attention output before its residual add (a post-norm, despite the
 * name Llama gives the pre-MLP norm), pre_feedforward_layernorm before the MLP, post_feedforward_layernorm
 * on its output. Gated MLP with `hidden_activation` (gelu_pytorch_tanh). The token embedding is scaled
 * by √hidden_size in the checkpoint's dtype (config.ts rounds it once the dtype is known); scores by
 * query_pre_attn_scalar^−½, soft-capped by attn_logit_softcapping, logits by final_logit_softcapping.
 * Layers alternate sliding-window and full attention, the first sliding (transformers' layer_types:
 * layer i slides when i is even). Embeddings are tied by default. `sliding_window_size`, which early
 * Gemma 2 configs carry beside `sliding_window`, is not read by transformers and not here either.
 */
import { defineArch } from './adapter.ts';
import type { ArchSpec } from './adapter.ts';
import type { ArchCodec } from './codec.ts';
import type { ConfigFields } from './common.ts';
import {
  DECODER_EMBEDDINGS,
  decoderShapeConfig,
  nullableNumber,
  parseDecoder,
  slidingLayers,
  windowSize,
} from './decoder.ts';

const codec: ArchCodec = {
  root: () => '',
  writeRoot: '',
  layers: 'model.layers.',
  layerModules: [
    { name: 'input_layernorm', fields: ['attnNorm'] },
    { name: 'self_attn.q_proj', fields: ['q'] },
    { name: 'self_attn.k_proj', fields: ['k'] },
    { name: 'self_attn.v_proj', fields: ['v'] },
    { name: 'self_attn.o_proj', fields: ['o'] },
    { name: 'post_attention_layernorm', fields: ['postAttnNorm'] },
    { name: 'pre_feedforward_layernorm', fields: ['mlpNorm'] },
    { name: 'mlp.gate_proj', fields: ['gate'] },
    { name: 'mlp.up_proj', fields: ['up'] },
    { name: 'mlp.down_proj', fields: ['down'] },
    { name: 'post_feedforward_layernorm', fields: ['postMlpNorm'] },
  ],
  attention: 'self_attn.',
  embeddingModules: DECODER_EMBEDDINGS,
  layerCountField: 'num_hidden_layers',
};

function parseConfig(cfg: ConfigFields, modelType: string): ArchSpec {
  const core = parseDecoder(cfg, modelType, {
    tieWordEmbeddings: true,
    headDim: 256,
    act: { key: 'hidden_activation', fallback: 'gelu_pytorch_tanh' },
  });
  const b = core.block;
  b.norm.offset = 1;
  b.postNorms = true;
  const attention = cfg.bool('attention_bias', false);
  b.bias = { qkv: attention, o: attention, mlp: false };
  b.queryScale = 1 / Math.sqrt(cfg.positiveNum('query_pre_attn_scalar', 256));
  // Gemma2Config defaults both caps on; an explicit null turns one off
  b.attnSoftcap = nullableNumber(cfg, 'attn_logit_softcapping', 50);
  b.finalSoftcap = nullableNumber(cfg, 'final_logit_softcapping', 30);
  b.embedScale = Math.sqrt(core.hiddenSize);
  const window = windowSize(cfg, 4096);
  const sliding = slidingLayers(cfg, core.numLayers, (i) => i % 2 === 0);
  b.slidingWindow = sliding.map((s) => (s ? window : null));
  return core;
}

export const gemma2Adapter = defineArch({
  modelTypes: ['gemma2'],
  codec,
  parseConfig,
  handles: () => ['attn_logit_softcapping', 'final_logit_softcapping', 'query_pre_attn_scalar'],
  synthetic: {
    tokenizer: 'llama',
    config: (s, _modelType, fail) => ({
      architectures: ['Gemma2ForCausalLM'],
      ...decoderShapeConfig(s, fail),
      hidden_act: 'gelu_pytorch_tanh',
      hidden_activation: 'gelu_pytorch_tanh',
      rope_theta: 10000,
      attention_bias: s.qkvBias ?? false,
      query_pre_attn_scalar: s.headDim,
      // a window shorter than the context, so the alternating layers differ in a small model
      sliding_window: Math.max(2, Math.floor(s.maxPositions / 4)),
      attn_logit_softcapping: 50,
      final_logit_softcapping: 30,
    }),
  },
});
