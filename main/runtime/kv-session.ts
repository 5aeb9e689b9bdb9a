/**
 * A batch-1 driver for the exported KV-cache decoder (graphs/kv-decoder.ts): it feeds the standard
 * inputs and carries the present tensors over as the next call's past, so the export's verification and
 * the benchmark decode exactly as a stock runtime would.
 */
import ort from 'onnxruntime-node';
import { KV_DECODER_IO } from './graphs/kv-decoder.ts';

/** What the driver must know of the model: the cache widths per layer and the logits width. */
export interface KvSessionInfo {
  numKvHeads: number;
  vocabSize: number;
  /** Per layer, the cached key and value widths per KV head (a KvLayerLayout fits). */
  layers: readonly { kRank: number; vRank: number }[];
}

export interface LayerCache {
  key: ort.Tensor;
  value: ort.Tensor;
}

/** The index of the largest entry of v[from, to), counted from `from`. */
export function argmax(v: Float32Array, from = 0, to = v.length): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (v[i] > v[best]) best = i;
  return best - from;
}

export class KvDecoderSession {
  private past: LayerCache[];
  private tokens = 0;

  /** The cache tensors' element type, as the model declares its past inputs (a 16-bit export: float16). */
  readonly cacheType: 'float32' | 'float16';

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly info: KvSessionInfo,
  ) {
    const past = session.inputMetadata.find((m) => m.name === KV_DECODER_IO.pastKey(0));
    this.cacheType = past?.isTensor && past.type === 'float16' ? 'float16' : 'float32';
    this.past = this.emptyCache();
  }

  /**
   * Opens the model from its path, so an external data file beside it resolves, or from the bytes of
   * a decoder built in memory (Try it, before any export).
   */
  static async create(
    model: string | Uint8Array,
    info: KvSessionInfo,
    options: ort.InferenceSession.SessionOptions = {},
  ): Promise<KvDecoderSession> {
    const session =
      typeof model === 'string'
        ? await ort.InferenceSession.create(model, options)
        : await ort.InferenceSession.create(model, options);
    return new KvDecoderSession(session, info);
  }

  private emptyCache(): LayerCache[] {
    const H = this.info.numKvHeads;
    const empty = (width: number) =>
      this.cacheType === 'float16'
        ? new ort.Tensor('float16', new Uint16Array(0), [1, H, 0, width])
        : new ort.Tensor('float32', new Float32Array(0), [1, H, 0, width]);
    return this.info.layers.map((l) => ({ key: empty(l.kRank), value: empty(l.vRank) }));
  }

  /** Tokens held in the cache. */
  get length(): number {
    return this.tokens;
  }

  /** The current per-layer cache tensors, [1, H_kv, length, r]. */
  cache(): readonly LayerCache[] {
    return this.past;
  }

  /** Bytes of the cache tensors the last call returned. */
  presentBytes(): number {
    let bytes = 0;
    // the bytes the runtime handed back, whatever their element type
    for (const { key, value } of this.past) {
      bytes += (key.data as ArrayBufferView).byteLength + (value.data as ArrayBufferView).byteLength;
    }
    return bytes;
  }

  /** Starts a new sequence: runs the whole prompt at once and returns its logits [S, V]. */
  async prefill(ids: Int32Array): Promise<Float32Array> {
    this.past = this.emptyCache();
    this.tokens = 0;
    return this.run(ids);
  }

  /** Appends one token to the sequence and returns its logits [V]. */
  async step(id: number): Promise<Float32Array> {
    return this.run(Int32Array.of(id));
  }

  /** The prompt followed by `steps` greedily chosen tokens (the argmax of each step's logits). */
  async greedy(prompt: Int32Array, steps: number): Promise<Int32Array> {
    const V = this.info.vocabSize;
    const out = new Int32Array(prompt.length + steps);
    out.set(prompt);
    if (steps < 1) return out;
    const logits = await this.prefill(prompt);
    out[prompt.length] = argmax(logits, (prompt.length - 1) * V, prompt.length * V);
    for (let n = prompt.length + 1; n < out.length; n++) out[n] = argmax(await this.step(out[n - 1]));
    return out;
  }

  private async run(ids: Int32Array): Promise<Float32Array> {
    const IO = KV_DECODER_IO;
    const S = ids.length;
    const T = this.tokens + S;
    const int64 = (values: ArrayLike<number>) => BigInt64Array.from(Array.from(values, (v) => BigInt(v)));
    const feeds: Record<string, ort.Tensor> = {
      [IO.inputIds]: new ort.Tensor('int64', int64(ids), [1, S]),
      [IO.attentionMask]: new ort.Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]),
      [IO.positionIds]: new ort.Tensor('int64', int64(Array.from({ length: S }, (_, t) => this.tokens + t)), [
        1,
        S,
      ]),
    };
    this.past.forEach((c, i) => {
      feeds[IO.pastKey(i)] = c.key;
      feeds[IO.pastValue(i)] = c.value;
    });
    const out = await this.session.run(feeds);
    this.past = this.info.layers.map((_, i) => ({
      key: out[IO.presentKey(i)],
      value: out[IO.presentValue(i)],
    }));
    this.tokens = T;
    return out[IO.logits].data as Float32Array;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
