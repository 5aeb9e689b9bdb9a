/**
 * Issue 14: progress counters read in what they name. The eval stages count windows and end at N/N (a
 * count of layer passes once read `7/7` for 8 windows); the export counts the model's layers, 1-based in
 * every display, and ends at N/N even when a layer stays whole (it once read `layer 5 4/4`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import type { Progress } from '../../main/core/progress.ts';
import { exportPlan } from '../../main/export/export.ts';
import { compressToPlan, type CompressionPlan } from '../../main/jobs/compress.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
const events: Progress[] = [];
let plan: CompressionPlan;
const EVAL_WINDOWS = 3;

beforeAll(async () => {
  ({ plan } = await compressToPlan(
    {
      modelDir: STORIES_DIR,
      calib: TINYSTORIES_TEXT,
      eval: TINYSTORIES_TEXT,
      method: 'kqsvd',
      ranks: { k: 4, v: 6 },
      keySpace: 'post-rope',
      window: 64,
      calibWindows: 4,
      evalWindows: EVAL_WINDOWS,
    },
    { onProgress: (p) => events.push(p) },
  ));
});
afterAll(() => tmp.cleanup());

const of = (list: Progress[], stage: string) => list.filter((p) => p.stage === stage);

describe('progress counters', () => {
  it.each(['eval original', 'eval compressed'])('%s counts windows and ends at N/N', (stage) => {
    const seen = of(events, stage);
    expect(seen.length).toBeGreaterThan(1);
    for (const p of seen) expect(p.total).toBe(EVAL_WINDOWS);
    expect(seen.at(-1)!.done).toBe(EVAL_WINDOWS);
    const done = seen.map((p) => p.done);
    expect(done).toEqual([...done].sort((a, b) => a - b));
  });

  it('export weights counts the model’s layers and ends at N/N with a layer left whole', async () => {
    const layers = plan.layers.length;
    const kept = { ...plan, layers: plan.layers.map((c, i) => (i === layers - 1 ? null : c)) };
    const seen: Progress[] = [];
    await exportPlan(kept, { out: path.join(tmp.dir, 'out'), onnx: false, onProgress: (p) => seen.push(p) });
    const weights = of(seen, 'export weights');
    for (const p of weights) expect(p.total).toBe(layers);
    expect(weights.at(-1)!.done).toBe(layers);
    // each per-layer event's count is its 1-based layer: `layer 3 3/5`, never `layer 5 4/4`
    for (const p of weights.filter((w) => w.layer >= 0)) expect(p.done).toBe(p.layer + 1);
  });
});
