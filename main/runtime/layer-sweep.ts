import type { LayerCompression } from '../core/kv.ts';
import { RankwiseError } from '../core/errors.ts';
import type { LayerWeights } from '../model/types.ts';
import type { HeldoutBatch } from './capture.ts';
import { f32, i32 } from './engine.ts';
import { LAYER_INPUTS } from './graphs/decoder-layer.ts';
import type { HeldoutErrors } from './layer-error.ts';
import {
  buildErrorSweep,
  errorSweepKey,
  SWEEP_INPUTS,
  SWEEP_OUTPUTS,
  type SweepKeySpace,
} from './graphs/error-sweep.ts';
import { layerWeightFeeds, type Feeds, type ModelRunner } from './runner.ts';
import { LayerGradient } from './layer-grad.ts';
import { pairProduct } from './projection.ts';
import { defaultProfileRows, sampledBatchRows } from './sampled-rows.ts';

const MiB = 1024 * 1024;

interface SweepBatch {
  batch: HeldoutBatch;
  rows: Int32Array;
  /** The original output at `rows`, [B, S, D]. */
  yRows: Float32Array;
}

/**
 * The relative decoder-layer output error ‖Ŷ − Y‖_F / ‖Y‖_F of many compressions of one layer, measured
 * together on held-out batches at sampled positions (graphs/error-sweep.ts). The error-rank profile is
 * this measurement at every grid pair; the allocator optimises exactly what it returns.
 */
export class LayerErrorSweep implements HeldoutErrors {
  private readonly weightFeeds: Feeds;
  private readonly batches: SweepBatch[];
  private readonly chunkBytes: number;
  readonly rowsPerWindow: number;

  private readonly seed: number | undefined;
  private thin: LayerGradient | undefined;

  constructor(
    private readonly runner: ModelRunner,
    private readonly weights: LayerWeights,
    private readonly heldout: HeldoutBatch[],
    opts: { rowsPerWindow?: number; seed?: number; chunkBytes?: number } = {},
  ) {
    this.seed = opts.seed;
    const spec = runner.spec;
    const D = spec.hiddenSize;
    this.weightFeeds = layerWeightFeeds(spec, weights);
    this.rowsPerWindow = opts.rowsPerWindow ?? defaultProfileRows(spec);
    this.chunkBytes = opts.chunkBytes ?? 192 * MiB;
    this.batches = heldout.map((batch, i) => ({
      batch,
      ...sampledBatchRows(batch, i, D, this.rowsPerWindow, opts.seed),
    }));
  }

  /** The positions measured in each held-out batch, in batch order. */
  rowsUsed(): Int32Array[] {
    return this.batches.map((b) => b.rows);
  }

  async error(c: LayerCompression | null): Promise<number> {
    return (await this.errors([c]))[0];
  }

  /** One error per compression, in order (null: the original layer). */
  async errors(compressions: (LayerCompression | null)[]): Promise<number[]> {
    const out = new Array<number>(compressions.length);
    // one graph per key space; the pairs of a fit share theirs
    const bySpace = new Map<SweepKeySpace, number[]>();
    for (const [i, c] of compressions.entries()) {
      // thin-space keys (R3) run through their own graph at the same rows, one compression at a time
      if (c?.keys && c.keySpace === 'thin-rope') out[i] = await this.thinError(c);
    }
    compressions.forEach((c, i) => {
      if (out[i] !== undefined) return;
      const space: SweepKeySpace = c?.keySpace === 'post-rope' ? 'post' : 'pre';
      bySpace.set(space, [...(bySpace.get(space) ?? []), i]);
    });
    for (const [space, indices] of bySpace) {
      const per = Math.max(1, Math.floor(this.chunkBytes / this.bytesPerPair()));
      for (let at = 0; at < indices.length; at += per) {
        const chunk = indices.slice(at, at + per);
        const errs = await this.run(
          space,
          chunk.map((i) => compressions[i]),
        );
        chunk.forEach((i, j) => (out[i] = errs[j]));
      }
    }
    return out;
  }

  /** The error of one thin-space compression at the sampled rows (the gradient graph's forward). */
  private async thinError(c: LayerCompression): Promise<number> {
    this.thin ??= new LayerGradient(this.runner, this.weights, this.heldout, {
      keys: 'thin',
      grad: false,
      rowsPerWindow: this.rowsPerWindow,
      seed: this.seed,
    });
    const d = this.runner.spec.headDim;
    const mV = c.values?.map((p) => pairProduct(p.a, p.b, d, p.rank)) ?? null;
    const { loss } = await this.thin.evaluateThin(c, mV);
    return Math.sqrt(loss);
  }

  /** Activation memory of one pair in the largest batch: scores, MLP rows, compressed keys and values. */
  private bytesPerPair(): number {
    const { numHeads: H, numKvHeads: Hkv, headDim: d, hiddenSize: D, intermediateSize: F } = this.runner.spec;
    let most = 0;
    for (const { batch, rows } of this.batches) {
      const S = rows.length;
      const rowsB = batch.B * S;
      most = Math.max(
        most,
        4 * (3 * H * rowsB * batch.T + rowsB * (3 * F + 6 * D) + 4 * batch.B * batch.T * Hkv * d),
      );
    }
    return Math.max(1, most);
  }

  private async run(space: SweepKeySpace, cs: (LayerCompression | null)[]): Promise<number[]> {
    const spec = this.runner.spec;
    const { numKvHeads: Hkv, headDim: d, hiddenSize: D } = spec;
    // factors zero-padded to d columns: the graph multiplies them out
    const stack = (side: 'keys' | 'values', factor: 'a' | 'b') => {
      const m = new Float32Array(cs.length * Hkv * d * d);
      cs.forEach((c, p) => {
        const pairs = c?.[side];
        for (let g = 0; g < Hkv; g++) {
          const at = (p * Hkv + g) * d * d;
          if (!pairs) {
            for (let i = 0; i < d; i++) m[at + i * d + i] = 1;
            continue;
          }
          const { rank, [factor]: f } = pairs[g];
          for (let i = 0; i < d; i++) for (let k = 0; k < rank; k++) m[at + i * d + k] = f[i * rank + k];
        }
      });
      return f32(m, [cs.length, Hkv, d, d]);
    };
    const X = SWEEP_INPUTS;
    const proj = {
      [X.kA]: stack('keys', 'a'),
      [X.kB]: stack('keys', 'b'),
      [X.vA]: stack('values', 'a'),
      [X.vB]: stack('values', 'b'),
    };
    const session = await this.runner.engine.session(errorSweepKey(spec, space), () =>
      buildErrorSweep(spec, space),
    );
    const err = new Float64Array(cs.length);
    let ref = 0;
    for (const { batch, rows, yRows } of this.batches) {
      const out = await session.run({
        ...this.weightFeeds,
        ...proj,
        ...this.runner.positionInputs(batch.T, batch.layer),
        [X.rows]: i32(rows, [rows.length]),
        [X.yRows]: f32(yRows, [batch.B, rows.length, D]),
        [LAYER_INPUTS.x]: f32(batch.x, [batch.B, batch.T, D]),
      });
      const e = out[SWEEP_OUTPUTS.sqErr].data as Float32Array;
      for (let p = 0; p < cs.length; p++) err[p] += e[p];
      ref += (out[SWEEP_OUTPUTS.sqRef].data as Float32Array)[0];
    }
    if (!(ref > 0))
      throw new RankwiseError('internal', 'the held-out outputs are all zero: no relative error');
    return Array.from(err, (e) => Math.sqrt(e / ref));
  }
}
