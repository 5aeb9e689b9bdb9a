import type { LayerCompression } from '../core/kv.ts';
import type { LayerWeights } from '../model/types.ts';
import { f32 } from './engine.ts';
import { LAYER_INPUTS } from './graphs/decoder-layer.ts';
import { compressionInputs } from './projection.ts';
import { layerWeightFeeds, type Feeds, type ModelRunner } from './runner.ts';
import type { HeldoutBatch } from './capture.ts';

/**
 * The held-out error of compressions of one layer, however it is measured: one at a time (the meter) or
 * many together at sampled positions (the profile's sweep, layer-sweep.ts). Everything a job measures on
 * held-out windows (training's selection, in-loop rank choices, the profile) goes through one of them, so
 * its figures are one measure.
 */
export interface HeldoutErrors {
  error(c: LayerCompression | null): Promise<number>;
  /** One error per compression, in order. */
  errors(cs: (LayerCompression | null)[]): Promise<number[]>;
}

/**
 * Relative decoder-layer output error ‖Ŷ − Y‖_F / ‖Y‖_F of a compressed layer on held-out batches whose
 * original outputs Y are known (ARCHITECTURE.md §3.4). The reduction happens inside the graph.
 */
export class LayerErrorMeter implements HeldoutErrors {
  private readonly weightFeeds: Feeds;

  constructor(
    private readonly runner: ModelRunner,
    weights: LayerWeights,
    private readonly batches: HeldoutBatch[],
  ) {
    this.weightFeeds = layerWeightFeeds(runner.spec, weights);
  }

  async errors(cs: (LayerCompression | null)[]): Promise<number[]> {
    const out: number[] = [];
    for (const c of cs) out.push(await this.error(c));
    return out;
  }

  async error(c: LayerCompression | null): Promise<number> {
    const spec = this.runner.spec;
    let err = 0;
    let ref = 0;
    for (const b of this.batches) {
      const { variant, feeds } = compressionInputs(spec, c, b.T);
      const out = await this.runner.layerVariant(
        { ...variant, error: true },
        {
          ...this.weightFeeds,
          ...feeds,
          [LAYER_INPUTS.yRef]: f32(b.y, [b.B, b.T, spec.hiddenSize]),
        },
        b.x,
        b.B,
        b.T,
        b.layer,
      );
      err += (out.sq_err.data as Float32Array)[0];
      ref += (out.sq_ref.data as Float32Array)[0];
    }
    return Math.sqrt(err / ref);
  }
}
