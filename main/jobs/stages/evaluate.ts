/** The eval stage: perplexity of the original and the compressed model, and their KV cache per token. */
import type { LayerCompression } from '../../core/kv.ts';
import { dtypeBytes } from '../../model/dtype.ts';
import type { ModelHandle } from '../../model/model.ts';
import type { ModelSpec } from '../../model/types.ts';
import type { Engine } from '../../runtime/engine.ts';
import { perplexity } from '../../runtime/perplexity.ts';
import { ModelRunner, withCompression } from '../../runtime/runner.ts';
import type { CompressOptions } from '../settings.ts';

export async function evaluate(
  run: { engine: Engine; model: ModelHandle; runner: ModelRunner; opts: CompressOptions },
  windows: Int32Array[],
  compressions: LayerCompression[],
  known: { originalNll?: number } = {},
): Promise<{ original: number; compressed: number }> {
  const { engine, model, runner, opts } = run;
  const original =
    known.originalNll !== undefined
      ? Math.exp(known.originalNll)
      : (await perplexity(runner, windows, { ...opts, stage: 'eval original' })).perplexity;
  // The compressed model shares the original's embeddings and head (a 1B model's are 1 GiB in float32)
  // rather than reading a second copy while the first is still held.
  const compressedRunner = new ModelRunner(engine, {
    ...withCompression(model, compressions),
    loadEmbeddings: () => runner.embeddingWeights(),
  });
  const compressed = await perplexity(compressedRunner, windows, { ...opts, stage: 'eval compressed' });
  return { original, compressed: compressed.perplexity };
}

/** KV cache bytes per token, every layer, before and after. */
export function kvBytesPerToken(
  spec: ModelSpec,
  compressions: LayerCompression[],
): { original: number; compressed: number } {
  const d = spec.headDim;
  const bytes = dtypeBytes(spec.dtype);
  const original = 2 * spec.numLayers * spec.numKvHeads * d * bytes;
  // Values left at full dimension (thin keys) cost d per head whatever vRank says.
  const compressed = compressions.reduce(
    (acc, c) => acc + (c.kRank + (c.values ? c.vRank : d)) * spec.numKvHeads * bytes,
    0,
  );
  return { original, compressed };
}
