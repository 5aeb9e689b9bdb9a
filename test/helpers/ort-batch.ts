/**
 * A batch of two rows through a KV decoder graph with onnxruntime alone: attention mask and positions as
 * a padded Hugging Face batch gives them, each run's presents fed back as the next run's pasts.
 */
import ort from 'onnxruntime-node';
import { KV_DECODER_IO as IO } from '../../main/runtime/graphs/kv-decoder.ts';

export const int64 = (values: ArrayLike<number>, dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(v))), dims);

export type Cache = { key: ort.Tensor; value: ort.Tensor }[];

/** `run(ids, S, maskRows, posRows)` → the last position's logits of each row (vocabulary `V`). */
export function twoRowRunner(session: ort.InferenceSession, empty: Cache, V: number) {
  let past = empty;
  return async (ids: number[], S: number, maskRows: number[], posRows: number[]): Promise<Float32Array[]> => {
    const feeds: Record<string, ort.Tensor> = {
      [IO.inputIds]: int64(ids, [2, S]),
      [IO.attentionMask]: int64(maskRows, [2, maskRows.length / 2]),
      [IO.positionIds]: int64(posRows, [2, S]),
    };
    past.forEach((p, i) => {
      feeds[IO.pastKey(i)] = p.key;
      feeds[IO.pastValue(i)] = p.value;
    });
    const res = await session.run(feeds);
    past = past.map((_, i) => ({ key: res[IO.presentKey(i)], value: res[IO.presentValue(i)] }));
    const logits = res[IO.logits].data as Float32Array;
    return [0, 1].map((r) => logits.slice(((r + 1) * S - 1) * V, (r + 1) * S * V));
  };
}
