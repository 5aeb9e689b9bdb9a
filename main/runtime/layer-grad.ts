import ort from 'onnxruntime-node';
import { RankwiseError } from '../core/errors.ts';
import type { LayerWeights } from '../model/types.ts';
import type { HeldoutBatch } from './capture.ts';
import { f32, i32 } from './engine.ts';
import { LAYER_INPUTS } from './graphs/decoder-layer.ts';
import {
  buildLayerGrad,
  LAYER_GRAD_INPUTS,
  LAYER_GRAD_OUTPUTS,
  layerGradKey,
  type LayerGradOptions,
} from './graphs/layer-grad.ts';
import { causalMask, layerWindow, ropeTablesIn } from './rope.ts';
import { thinFeeds } from './projection.ts';
import type { LayerCompression } from '../core/kv.ts';
import { sampledBatchRows } from './sampled-rows.ts';
import { layerWeightFeeds, type Feeds, type ModelRunner } from './runner.ts';

export interface ThinGradResult {
  /** ℒ = Σ‖Ŷ − Y‖²_F / Σ‖Y‖²_F over every batch. */
  loss: number;
  /** ∂ℒ/∂A_g and ∂ℒ/∂B_g of the thin-space keys, d×r row-major per KV head. */
  gradA: Float64Array[];
  gradB: Float64Array[];
  /** ∂ℒ/∂M_V,g per KV head, d×d row-major. */
  gradV: Float64Array[];
}

export interface LayerGradResult {
  /** ℒ = Σ‖Ŷ − Y‖²_F / Σ‖Y‖²_F over every batch. */
  loss: number;
  /** ∂ℒ/∂M_K,g per KV head, d×d row-major. */
  gradK: Float64Array[];
  /** ∂ℒ/∂M_V,g per KV head, d×d row-major. */
  gradV: Float64Array[];
}

function f64(data: Float64Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float64', data, dims);
}

/** The same tensor in float64 (float inputs only; other types pass through). */
function toDouble(t: ort.Tensor): ort.Tensor {
  return t.type === 'float32' ? f64(Float64Array.from(t.data as Float32Array), t.dims) : t;
}

/**
 * Loss and gradients of StiefAttention's layer objective ℒ = ‖Ŷ − Y‖²_F / ‖Y‖²_F (methods.md §8.2) with
 * respect to per-KV-head projections M_K (keys, pre-RoPE) and M_V (values), on held-out batches whose
 * original outputs Y are known. ℒ normalises by ‖Y‖² of all batches together, so each batch's gradient
 * (normalised by its own ‖Y_b‖² in the graph) is weighted by ‖Y_b‖² / Σ‖Y‖².
 * float32 is for training; float64 exists for checks against finite differences.
 */
export class LayerGradient {
  private readonly weightFeeds: Feeds;
  private readonly positionFeeds = new Map<string, Feeds>();
  /** x and y_ref per batch, made once: they are the same at every evaluation. */
  private readonly batchFeeds: Feeds[];
  private readonly opts: LayerGradOptions;

  /**
   * `rowsPerWindow`: positions of each window the loss compares (every one by default; a wide model's
   * training samples them as its profile does, runtime/layer-sweep.ts).
   */
  constructor(
    private readonly runner: ModelRunner,
    weights: LayerWeights,
    private readonly batches: HeldoutBatch[],
    opts: Partial<LayerGradOptions> & { rowsPerWindow?: number; seed?: number } = {},
  ) {
    this.opts = { dtype: opts.dtype ?? 'float32', keys: opts.keys ?? 'pre', grad: opts.grad ?? true };
    const feeds = layerWeightFeeds(runner.spec, weights);
    this.weightFeeds = this.double
      ? Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, toDouble(t)]))
      : feeds;
    const D = runner.spec.hiddenSize;
    this.batchFeeds = batches.map((b, i) => {
      const perWindow = opts.rowsPerWindow ?? Number.POSITIVE_INFINITY;
      const { rows, yRows } = sampledBatchRows(b, i, D, perWindow, opts.seed);
      return {
        [LAYER_INPUTS.x]: this.floats(b.x, [b.B, b.T, D]),
        [LAYER_GRAD_INPUTS.rows]: i32(rows, [rows.length]),
        [LAYER_INPUTS.yRef]: this.floats(yRows, [b.B, rows.length, D]),
      };
    });
  }

  private get double(): boolean {
    return this.opts.dtype === 'float64';
  }

  private floats(data: Float32Array | Float64Array, dims: number[]): ort.Tensor {
    if (this.double) return f64(data instanceof Float64Array ? data : Float64Array.from(data), dims);
    return f32(data instanceof Float32Array ? data : Float32Array.from(data), dims);
  }

  /** Mask (the batch's layer's window) and RoPE tables for length T, in the graph's float type. */
  private positions(T: number, layer: number | undefined): Feeds {
    if (!this.double) return this.runner.positionInputs(T, layer);
    const spec = this.runner.spec;
    const window = layerWindow(spec.block, layer);
    const key = `${T}:${window ?? 'causal'}`;
    let feeds = this.positionFeeds.get(key);
    if (!feeds) {
      feeds = { [LAYER_INPUTS.mask]: f64(Float64Array.from(causalMask(T, window)), [T, T]) };
      const rope = spec.block.rope;
      if (rope) {
        const { cos, sin } = ropeTablesIn(Float64Array, T, spec.headDim, rope);
        feeds[LAYER_INPUTS.cos] = f64(cos, [T, 1, spec.headDim]);
        feeds[LAYER_INPUTS.sin] = f64(sin, [T, 1, spec.headDim]);
      }
      this.positionFeeds.set(key, feeds);
    }
    return feeds;
  }

  /** Per-head d×d matrices as a [H_kv, d, d] input; null is the identity (that side uncompressed). */
  private projection(m: Float64Array[] | null, what: string): ort.Tensor {
    const { numKvHeads: Hkv, headDim: d } = this.runner.spec;
    const data = new Float64Array(Hkv * d * d);
    if (!m) {
      for (let h = 0; h < Hkv; h++) for (let i = 0; i < d; i++) data[h * d * d + i * d + i] = 1;
    } else {
      if (m.length !== Hkv || m.some((a) => a.length !== d * d)) {
        throw new RankwiseError('internal', `${what} projections must be ${Hkv} matrices of ${d}×${d}`);
      }
      m.forEach((a, h) => data.set(a, h * d * d));
    }
    return this.floats(data, [Hkv, d, d]);
  }

  /** ℒ, ∂ℒ/∂M_K and ∂ℒ/∂M_V at the given projections (null: identity, that side uncompressed). */
  async evaluate(mK: Float64Array[] | null, mV: Float64Array[] | null): Promise<LayerGradResult> {
    if (this.opts.keys !== 'pre')
      throw new RankwiseError('internal', 'a thin-space gradient takes evaluateThin');
    const { headDim: d } = this.runner.spec;
    const res = await this.run(
      () => ({
        [LAYER_INPUTS.kProj]: this.projection(mK, 'key'),
        [LAYER_INPUTS.vProj]: this.projection(mV, 'value'),
      }),
      [
        [LAYER_GRAD_OUTPUTS.gradK, d * d],
        [LAYER_GRAD_OUTPUTS.gradV, d * d],
      ],
    );
    return { loss: res.loss, gradK: res.grads[0], gradV: res.grads[1] };
  }

  /**
   * ℒ, ∂ℒ/∂A, ∂ℒ/∂B and ∂ℒ/∂M_V with thin-space keys (R3): `keys` is a thin-rope compression (its factor
   * pairs and RoPE planes; its values are ignored), `mV` the value projections (null: uncompressed).
   * With `grad: false` only the loss is computed and the gradients are empty.
   */
  async evaluateThin(keys: LayerCompression, mV: Float64Array[] | null): Promise<ThinGradResult> {
    if (this.opts.keys !== 'thin')
      throw new RankwiseError('internal', 'this gradient was built for pre-RoPE keys');
    const spec = this.runner.spec;
    const d = spec.headDim;
    const r = keys.keys?.[0].rank ?? 0;
    const mVTensor = this.projection(mV, 'value');
    const thin = new Map<number, Feeds>();
    const res = await this.run(
      (T) => {
        if (!thin.has(T)) thin.set(T, thinFeeds(spec, keys, T, this.opts.dtype));
        return { ...thin.get(T)!, [LAYER_INPUTS.vProj]: mVTensor };
      },
      this.opts.grad
        ? [
            [LAYER_GRAD_OUTPUTS.gradThinA, d * r],
            [LAYER_GRAD_OUTPUTS.gradThinB, d * r],
            [LAYER_GRAD_OUTPUTS.gradV, d * d],
          ]
        : [],
    );
    const [gradA = [], gradB = [], gradV = []] = res.grads;
    return { loss: res.loss, gradA, gradB, gradV };
  }

  /**
   * Runs every batch with the feeds `inputs` gives for its length and combines the loss and the named
   * per-KV-head gradients (`size` numbers per head) over batches.
   */
  private async run(
    inputs: (T: number) => Feeds,
    outputs: [name: string, size: number][],
  ): Promise<{ loss: number; grads: Float64Array[][] }> {
    const spec = this.runner.spec;
    const Hkv = spec.numKvHeads;
    const session = await this.runner.engine.session(layerGradKey(spec, this.opts), () =>
      buildLayerGrad(spec, this.opts),
    );
    const O = LAYER_GRAD_OUTPUTS;
    let err = 0;
    let ref = 0;
    const sums = outputs.map(([, size]) => new Float64Array(Hkv * size));
    for (const [n, b] of this.batches.entries()) {
      const out = await session.run({
        ...this.weightFeeds,
        ...inputs(b.T),
        ...this.positions(b.T, b.layer),
        ...this.batchFeeds[n],
      });
      const sqRef = Number(out[O.sqRef].data[0]);
      err += Number(out[O.sqErr].data[0]);
      ref += sqRef;
      // The graph's gradients are of sq_err_b / sq_ref_b: rescaled by sq_ref_b here, by Σ sq_ref at the end.
      outputs.forEach(([name], k) => {
        const got = out[name].data as Float32Array | Float64Array;
        const sum = sums[k];
        for (let i = 0; i < sum.length; i++) sum[i] += got[i] * sqRef;
      });
    }
    if (!(ref > 0))
      throw new RankwiseError('internal', 'layer gradient over batches whose reference output is zero');
    const grads = sums.map((sum, k) => {
      const size = outputs[k][1];
      for (let i = 0; i < sum.length; i++) sum[i] /= ref;
      return Array.from({ length: Hkv }, (_, h) => sum.slice(h * size, (h + 1) * size));
    });
    return { loss: err / ref, grads };
  }
}
