/**
 * Qwen3: the Llama block plus a per-head RMSNorm on queries and keys after projection, before RoPE
 * (`self_attn.q_norm` / `k_norm`, weight [head_dim], eps rms_norm_eps). `attention_bias` gives q, k, v
 * and o biases (off by default, unlike Qwen2's fixed q/k/v biases); head_dim is its own config key
 * (128 by default), not hidden_size / heads. Sliding windows follow Qwen2's keys.
 */
import { defineArch } from './adapter.ts';
import type { ArchSpec } from './adapter.ts';
import type { ArchCodec } from './codec.ts';
import type { ConfigFields } from './common.ts';
import { DECODER_EMBEDDINGS, decoderShapeConfig, parseDecoder, qwenWindows } from './decoder.ts';

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
    { name: 'self_attn.q_norm', fields: ['qNorm'] },
    { name: 'self_attn.k_norm', fields: ['kNorm'] },
    { name: 'post_attention_layernorm', fields: ['mlpNorm'] },
    { name: 'mlp.gate_proj', fields: ['gate'] },
    { name: 'mlp.up_proj', fields: ['up'] },
    { name: 'mlp.down_proj', fields: ['down'] },
  ],
  attention: 'self_attn.',
  embeddingModules: DECODER_EMBEDDINGS,
  layerCountField: 'num_hidden_layers',
};

function parseConfig(cfg: ConfigFields, modelType: string): ArchSpec {
  const core = parseDecoder(cfg, modelType, { tieWordEmbeddings: false, headDim: 128 });
  const b = core.block;
  b.qkNorm = true;
  const attention = cfg.bool('attention_bias', false);
  b.bias = { qkv: attention, o: attention, mlp: false };
  b.slidingWindow = qwenWindows(cfg, core.numLayers);
  return core;
}

export const qwen3Adapter = defineArch({
  modelTypes: ['qwen3'],
  codec,
  parseConfig,
  handles: () => ['use_sliding_window'],
  synthetic: {
    tokenizer: 'llama',
    config: (s, _modelType, fail) => ({
      architectures: ['Qwen3ForCausalLM'],
      ...decoderShapeConfig(s, fail),
      rope_theta: 1000000,
      attention_bias: s.qkvBias ?? false,
      use_sliding_window: false,
      sliding_window: null,
      max_window_layers: s.numLayers,
    }),
  },
});
