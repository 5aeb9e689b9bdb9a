/**
 * The end-to-end effect of changing one layer at a time (core/allocate/effect.ts): for every probe (a
 * layer and a compression of it, every other layer as a base model has it: the original, or a compressed
 * model), the whole model's mean next-token NLL minus the base model's, on the same tokens.
 *
 * All probes share one pass: the base model's stream runs layer by layer, and at layer ℓ each of its
 * probes forks a stream from the base's input to ℓ, which from then on runs the base model's layers. So
 * every layer's weights are read once per group of windows, and a probe of layer ℓ costs the L − ℓ layers
 * it changes, not a whole forward.
 */
import { RankwiseError } from '../core/errors.ts';
import type { LayerCompression } from '../core/kv.ts';
import { itemProgressTracker, throwIfCancelled, type Progress } from '../core/progress.ts';
import { batchHead, checkLayerOutput, plan } from './forward.ts';
import { compressionInputs } from './projection.ts';
import { layersAhead, layerWeightFeeds, type ModelRunner } from './runner.ts';

export interface LayerEffectOptions {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Memory for every stream's hidden states of one group of windows (default EFFECT_GROUP_BYTES). */
  groupBytes?: number;
  /**
   * The model the probes change, layer by layer (default: the original everywhere): a probe replaces its
   * layer's entry, and its effect is measured against this model.
   */
  base?: readonly (LayerCompression | null)[];
}

const MiB = 1024 * 1024;
/** Memory for every stream's hidden states of one group of windows, unless the caller says otherwise. */
export const EFFECT_GROUP_BYTES = 512 * MiB;

/**
 * ΔNLL (nats per scored token) of each probe against the base model (`effects[ℓ]`, in the order of
 * `probes[ℓ]`, layer ℓ's compressions, null for the layer uncompressed), and the base model's own mean
 * NLL. Each sequence is scored on its tokens 2…T, as perplexity is.
 */
export async function layerEffects(
  runner: ModelRunner,
  sequences: Int32Array[],
  probes: (LayerCompression | null)[][],
  opts: LayerEffectOptions = {},
): Promise<{ effects: number[][]; baseNll: number }> {
  const spec = runner.spec;
  const D = spec.hiddenSize;
  if (probes.length !== spec.numLayers) {
    throw new RankwiseError(
      'internal',
      `layer effects: ${probes.length} probe lists for ${spec.numLayers} layers`,
    );
  }
  const streams = 1 + probes.reduce((n, p) => n + p.length, 0);
  const groups = plan(runner, sequences, {
    groupBytes: Math.max(4 * D, Math.floor((opts.groupBytes ?? EFFECT_GROUP_BYTES) / streams)),
  });
  const sums = probes.map((p) => new Float64Array(p.length));
  let baseSum = 0;
  let scored = 0;
  const tick = itemProgressTracker(
    'effects',
    groups.length * (spec.numLayers + 1),
    sequences.length,
    opts.onProgress,
  );
  for (const group of groups) {
    throwIfCancelled(opts.signal);
    const main: Float32Array[] = [];
    for (const b of group) main.push(await runner.embed(b.ids, b.members.length, b.T));
    /** forks[ℓ][p][micro-batch]: the stream of layer ℓ's probe p. */
    const forks: Float32Array[][][] = probes.map(() => []);
    for await (const { layer, weights: w } of layersAhead(runner.source)) {
      throwIfCancelled(opts.signal);
      const weights = layerWeightFeeds(spec, w);
      const run = async (c: LayerCompression | null, x: Float32Array, k: number) => {
        const b = group[k];
        const { variant, feeds } = compressionInputs(spec, c, b.T);
        const out = await runner.layerVariant(
          variant,
          { ...weights, ...feeds },
          x,
          b.members.length,
          b.T,
          layer,
        );
        const y = out.y.data as Float32Array;
        checkLayerOutput(runner, layer, y, D);
        return y;
      };
      // earlier probes' streams run this layer as the base model has it
      const own = opts.base?.[layer] ?? null;
      for (const byProbe of forks.slice(0, layer))
        for (const stream of byProbe)
          for (let k = 0; k < group.length; k++) stream[k] = await run(own, stream[k], k);
      // this layer's probes fork from the base model's input to it
      forks[layer] = [];
      for (const c of probes[layer]) {
        const stream: Float32Array[] = [];
        for (let k = 0; k < group.length; k++) stream.push(await run(c, main[k], k));
        forks[layer].push(stream);
      }
      for (let k = 0; k < group.length; k++) main[k] = await run(own, main[k], k);
      tick(layer);
    }
    for (const [k, b] of group.entries()) {
      throwIfCancelled(opts.signal);
      const B = b.members.length;
      const base = (await batchHead(runner, main[k], b.ids, B, b.T)).nll;
      for (let m = 0; m < B; m++) for (let t = 0; t < b.T - 1; t++) baseSum += base[m * b.T + t];
      for (const [layer, byProbe] of forks.entries()) {
        for (const [p, stream] of byProbe.entries()) {
          const nll = (await batchHead(runner, stream[k], b.ids, B, b.T)).nll;
          let s = 0;
          for (let m = 0; m < B; m++)
            for (let t = 0; t < b.T - 1; t++) s += nll[m * b.T + t] - base[m * b.T + t];
          sums[layer][p] += s;
          stream[k] = new Float32Array(0);
        }
      }
      scored += B * (b.T - 1);
    }
    tick(-1);
  }
  if (scored === 0)
    throw new RankwiseError(
      'bad-input',
      'there are no tokens to score: every window needs at least 2 tokens',
    );
  return { effects: sums.map((s) => Array.from(s, (x) => x / scored)), baseNll: baseSum / scored };
}
