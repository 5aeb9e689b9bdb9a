/**
 * Llama-family adapter: llama (1–3.x; Llama 3's rope scaling is resolved in rope.ts), mistral and qwen2
 * share one block (RMSNorm, RoPE with rotate_half, GQA, gated MLP) and one tensor naming scheme; they
 * differ in config defaults, which biases exist and how sliding windows are configured.
 */
import { defineArch } from './adapter.ts';
import type { ArchSpec } from './adapter.ts';
import type { ArchCodec, LayerField, Module } from './codec.ts';
import type { ConfigFields } from './common.ts';
import {
  DECODER_EMBEDDINGS,
  decoderShapeConfig,
  parseDecoder,
  qwenWindows,
  uniformWindows,
} from './decoder.ts';

const LAYER: readonly Module<LayerField>[] = [
  { name: 'input_layernorm', fields: ['attnNorm'] },
  { name: 'self_attn.q_proj', fields: ['q'] },
  { name: 'self_attn.k_proj', fields: ['k'] },
  { name: 'self_attn.v_proj', fields: ['v'] },
  { name: 'self_attn.o_proj', fields: ['o'] },
  { name: 'post_attention_layernorm', fields: ['mlpNorm'] },
  { name: 'mlp.gate_proj', fields: ['gate'] },
  { name: 'mlp.up_proj', fields: ['up'] },
  { name: 'mlp.down_proj', fields: ['down'] },
];

const codec: ArchCodec = {
  root: () => '',
  writeRoot: '',
  layers: 'model.layers.',
  layerModules: LAYER,
  attention: 'self_attn.',
  embeddingModules: DECODER_EMBEDDINGS,
  layerCountField: 'num_hidden_layers',
};

function parseConfig(cfg: ConfigFields, modelType: string): ArchSpec {
  const core = parseDecoder(cfg, modelType, { tieWordEmbeddings: false });
  const b = core.block;
  if (modelType === 'llama') {
    // attention_bias covers q, k, v and o together; mlp_bias gate, up and down
    const attention = cfg.bool('attention_bias', false);
    b.bias = { qkv: attention, o: attention, mlp: cfg.bool('mlp_bias', false) };
  } else if (modelType === 'qwen2') {
    b.bias = { qkv: true, o: false, mlp: false };
    b.slidingWindow = qwenWindows(cfg, core.numLayers);
  } else {
    // MistralConfig's sliding_window defaults to 4096 when the key is absent; null turns it off
    b.slidingWindow = uniformWindows(cfg, core.numLayers, 4096);
  }
  return core;
}

export const llamaAdapter = defineArch({
  modelTypes: ['llama', 'mistral', 'qwen2'],
  codec,
  parseConfig,
  handles: (modelType) => (modelType === 'qwen2' ? ['use_sliding_window'] : []),
  // old Llama checkpoints stored the RoPE frequency table as a buffer
  isParameter: (name) => !name.endsWith('rotary_emb.inv_freq'),
  synthetic: {
    tokenizer: 'llama',
    config(s, modelType, fail) {
      const base = decoderShapeConfig(s, fail);
      if (modelType === 'llama') {
        return {
          architectures: ['LlamaForCausalLM'],
          ...base,
          rope_theta: 10000,
          attention_bias: s.qkvBias ?? false,
          mlp_bias: false,
        };
      }
      if (modelType === 'mistral') {
        if (s.qkvBias) fail('mistral has no attention biases (qkvBias must be false)');
        return { architectures: ['MistralForCausalLM'], ...base, rope_theta: 1000000, sliding_window: null };
      }
      if (s.qkvBias === false) fail('qwen2 always has q/k/v biases (qkvBias must be true)');
      return {
        architectures: ['Qwen2ForCausalLM'],
        ...base,
        rope_theta: 1000000,
        use_sliding_window: false,
        sliding_window: null,
        max_window_layers: s.numLayers,
      };
    },
  },
});
