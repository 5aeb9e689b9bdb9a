/**
 * Greedy decoding of an exported model.onnx written against nothing but onnxruntime-node: the way a
 * stock runtime would drive it (Optimum / onnxruntime-genai input names, empty pasts, presents fed back
 * as the next pasts). Tests use it to show the export needs nothing of Rankwise to run.
 */
import ort from 'onnxruntime-node';
import { int64 } from './ort-batch.ts';

export interface OrtGreedyResult {
  ids: number[];
  /** The cache after the last run: per layer [key dims, value dims], and the total bytes. */
  cacheDims: [readonly number[], readonly number[]][];
  cacheBytes: number;
}

export async function ortGreedy(
  modelPath: string,
  prompt: ArrayLike<number>,
  steps: number,
): Promise<OrtGreedyResult> {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    // each layer's cache width is read off the model's present outputs, as a generic runtime would: an
    // export declares its past widths symbolic (any empty past will do), a bare decoder static
    const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
    const layers = pastNames.length / 2;
    const outputs = new Map(session.outputMetadata.map((m) => [m.name, m]));
    const empty = (present: string) => {
      const m = outputs.get(present);
      if (!m?.isTensor) throw new Error(`no tensor output ${present}`);
      const [, heads, , width] = m.shape;
      const dims = [1, heads as number, 0, width as number];
      // a 16-bit export declares its cache float16
      return m.type === 'float16'
        ? new ort.Tensor('float16', new Uint16Array(0), dims)
        : new ort.Tensor('float32', new Float32Array(0), dims);
    };
    let past: ort.Tensor[][] = Array.from({ length: layers }, (_, i) => [
      empty(`present.${i}.key`),
      empty(`present.${i}.value`),
    ]);
    const ids = Array.from(prompt);
    let feed = ids.slice();
    let last: Record<string, ort.Tensor> = {};
    for (let s = 0; s < steps; s++) {
      const start = ids.length - feed.length;
      const feeds: Record<string, ort.Tensor> = {
        input_ids: int64(feed, [1, feed.length]),
        attention_mask: int64(new Array(ids.length).fill(1), [1, ids.length]),
        position_ids: int64(
          feed.map((_, t) => start + t),
          [1, feed.length],
        ),
      };
      past.forEach(([k, v], i) => {
        feeds[`past_key_values.${i}.key`] = k;
        feeds[`past_key_values.${i}.value`] = v;
      });
      last = await session.run(feeds);
      const logits = last.logits;
      const V = logits.dims[2];
      const row = (logits.data as Float32Array).subarray((feed.length - 1) * V, feed.length * V);
      let best = 0;
      for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
      past = past.map((_, i) => [last[`present.${i}.key`], last[`present.${i}.value`]]);
      ids.push(best);
      feed = [best];
    }
    const cacheDims = past.map(([k, v]) => [k.dims, v.dims] as [readonly number[], readonly number[]]);
    const cacheBytes = past.reduce(
      (a, [k, v]) => a + (k.data as ArrayBufferView).byteLength + (v.data as ArrayBufferView).byteLength,
      0,
    );
    return { ids, cacheDims, cacheBytes };
  } finally {
    await session.release();
  }
}
