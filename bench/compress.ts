/**
 * Seconds per stage of `compress` for every method, on stories260K and on the synthetic ~125M model, with
 * 32 calibration windows of 512 tokens. Rows for bench/run.ts.
 */
import { compress, type CompressSettings } from '../main/jobs/compress.ts';
import type { CompressReport } from '../main/contract/report.ts';
import { METHOD_IDS } from '../main/methods/index.ts';

const stages = (r: CompressReport) =>
  Object.entries(r.seconds)
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');

export async function benchCompress(
  storiesDir: string,
  synthDir: string,
  text: string,
): Promise<[string, string][]> {
  const rows: [string, string][] = [];
  const run = async (label: string, s: CompressSettings) => {
    const r = await compress(s);
    const ppl = `ppl ${r.perplexity.original.toFixed(3)} → ${r.perplexity.compressed.toFixed(3)}`;
    const train = r.training
      ? `; ${r.training.steps} steps, ${(1000 * r.training.secondsPerLayerStep).toFixed(0)} ms per layer per step`
      : '';
    rows.push([label, `${stages(r)} s; ${(100 * r.kvFraction).toFixed(0)} % cache, ${ppl}${train}`]);
    console.log(`${label.padEnd(52)} ${rows[rows.length - 1][1]}`);
  };
  // stories260K: the whole job, allocation included (64 grid points per layer and key space).
  for (const method of METHOD_IDS) {
    await run(`compress stories260K ${method}, --kv-fraction 0.5`, {
      modelDir: storiesDir,
      calib: text,
      eval: text,
      method,
      kvFraction: 0.5,
      window: 512,
      calibWindows: 32,
      evalWindows: 16,
    });
  }
  // 125M: fixed ranks for every method (capture, fit, eval), then one allocated run for the profile cost.
  // StiefAttention trains 10 steps per phase here: enough for the per-step cost, which is what scales.
  for (const method of METHOD_IDS) {
    await run(`compress 125M ${method}, --k-rank 32 --v-rank 32`, {
      modelDir: synthDir,
      calib: text,
      eval: text,
      method,
      ranks: { k: 32, v: 32 },
      keySpace: method === 'kqsvd' || method === 'ksvd' ? 'pre-rope' : undefined,
      window: 512,
      calibWindows: 32,
      heldoutWindows: 1,
      evalWindows: 4,
      stief: { steps: 10, trainWindows: 2 },
    });
  }
  await run('compress 125M kqsvd pre-rope, --kv-fraction 0.5', {
    modelDir: synthDir,
    calib: text,
    eval: text,
    method: 'kqsvd',
    kvFraction: 0.5,
    keySpace: 'pre-rope',
    window: 512,
    calibWindows: 32,
    heldoutWindows: 1,
    evalWindows: 4,
  });
  return rows;
}
