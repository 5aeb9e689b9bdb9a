/**
 * Phi-3: the Llama block with fused projections — `self_attn.qkv_proj` stacks q, k and v rows (in that
 * order) and `mlp.gate_up_proj` stacks gate then up (transformers chunks its output in two, gate first).
 * No biases. `sliding_window`, when set, applies to every layer. The LongRoPE scaling of the 128k
 * variants (rope_scaling type "longrope", formerly "su") and a partial_rotary_factor other than 1
 * (Phi-4-mini) are refused by name in rope.ts.
 */
import { defineArch } from './adapter.ts';
import type { ArchSpec } from './adapter.ts';
import type { ArchCodec } from './codec.ts';
import type { ConfigFields } from './common.ts';
import { DECODER_EMBEDDINGS, decoderShapeConfig, parseDecoder, uniformWindows } from './decoder.ts';

const codec: ArchCodec = {
  root: () => '',
  writeRoot: '',
  layers: 'model.layers.',
  layerModules: [
    { name: 'input_layernorm', fields: ['attnNorm'] },
    { name: 'self_attn.qkv_proj', fields: ['q', 'k', 'v'] },
    { name: 'self_attn.o_proj', fields: ['o'] },
    { name: 'post_attention_layernorm', fields: ['mlpNorm'] },
    { name: 'mlp.gate_up_proj', fields: ['gate', 'up'] },
    { name: 'mlp.down_proj', fields: ['down'] },
  ],
  attention: 'self_attn.',
  embeddingModules: DECODER_EMBEDDINGS,
  layerCountField: 'num_hidden_layers',
};

function parseConfig(cfg: ConfigFields, modelType: string): ArchSpec {
  const core = parseDecoder(cfg, modelType, { tieWordEmbeddings: false, rmsNormEps: 1e-5 });
  // Phi3Config's sliding_window defaults to None
  core.block.slidingWindow = uniformWindows(cfg, core.numLayers, null);
  return core;
}

export const phi3Adapter = defineArch({
  modelTypes: ['phi3'],
  codec,
  parseConfig,
  synthetic: {
    tokenizer: 'llama',
    config(s, _modelType, fail) {
      if (s.qkvBias) fail('phi3 has no attention biases (qkvBias must be false)');
      return {
        architectures: ['Phi3ForCausalLM'],
        ...decoderShapeConfig(s, fail),
        rope_theta: 10000,
        original_max_position_embeddings: s.maxPositions,
        sliding_window: null,
        resid_pdrop: 0,
        embd_pdrop: 0,
      };
    },
  },
});
