import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress, type CompressSettings } from '../../main/jobs/compress.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { rewriteTensors } from '../helpers/checkpoint-edit.ts';

const tmp = tempDir();
const TEXT = () => path.join(tmp.dir, 'text.txt');
const DECOY = () => path.join(tmp.dir, 'decoy');
const FAST = { steps: 150, evalEvery: 10, patience: 6, lr: 0.3, trainWindows: 3 };

/**
 * A layer whose loudest key directions are useless: keys live in two RoPE planes, (0, d/2) scaled up 6×
 * and (1, 1 + d/2), and no query reads the loud one (those query dimensions are zero). Variance-based bases
 * (EigenAttention, K/V PCA) keep the loud plane at rank 2; the layer output depends only on the other.
 */
async function writeDecoy(dir: string): Promise<void> {
  await writeSyntheticModel(dir, {
    modelType: 'llama',
    hiddenSize: 32,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 8,
    intermediateSize: 48,
    maxPositions: 128,
    dtype: 'F32',
    tie: true,
    seed: 51,
  });
  const d = 8;
  const loud = (row: number) => row % d === 0 || row % d === d / 2;
  const useful = (row: number) => row % d === 1 || row % d === 1 + d / 2;
  await rewriteTensors(dir, (name, data, shape) => {
    if (!/[kq]_proj\.weight$/.test(name)) return;
    const D = shape[1];
    for (let r = 0; r < shape[0]; r++) {
      const row = data.subarray(r * D, (r + 1) * D);
      if (/k_proj\.weight$/.test(name)) {
        if (loud(r)) row.forEach((v, i, a) => (a[i] = 6 * v));
        else if (!useful(r)) row.fill(0);
      }
      if (/q_proj\.weight$/.test(name) && loud(r)) row.fill(0);
    }
  });
}

beforeAll(async () => {
  await writeDecoy(DECOY());
  const sentence =
    'A little bird sang on the old tree while the children played in the garden near the river. ';
  fs.writeFileSync(TEXT(), sentence.repeat(80));
});
afterAll(() => tmp.cleanup());

describe('StiefAttention', () => {
  it('finds a much lower layer error than EigenAttention and K-SVD when the loudest key directions are useless', async () => {
    const base: CompressSettings = {
      modelDir: DECOY(),
      calib: TEXT(),
      eval: TEXT(),
      method: 'eigen',
      ranks: { k: 2, v: 8 },
      window: 64,
      calibWindows: 8,
      evalWindows: 2,
      stief: FAST,
    };
    const eigen = await compress(base);
    const ksvd = await compress({ ...base, method: 'ksvd', keySpace: 'pre-rope' });
    const events: { stage: string; eta: number | null; layer: number }[] = [];
    const stief = await compress(
      { ...base, method: 'stief' },
      { onProgress: (p) => events.push({ stage: p.stage, eta: p.etaSeconds, layer: p.layer }) },
    );
    // Training reports per layer and step, with an ETA.
    const training = events.filter((e) => e.stage.startsWith('train '));
    expect(new Set(training.map((e) => e.stage))).toEqual(
      new Set(['train shared keys', 'train per-head keys', 'train values']),
    );
    expect(training.length).toBeGreaterThan(10);
    expect(training.every((e) => e.layer === 0 && e.eta !== null && Number.isFinite(e.eta))).toBe(true);
    expect(stief.training!.steps).toBeGreaterThan(0);
    const [e, k, s] = [eigen, ksvd, stief].map((r) => r.layers[0].error);
    expect(e).toBeGreaterThan(0.05);
    expect(s).toBeLessThan(0.7 * e);
    expect(s).toBeLessThan(0.7 * k);
    expect(stief.seconds.train).toBeGreaterThan(0);
  });

  it.each([
    ['stories260K', STORIES_DIR, TINYSTORIES_TEXT, 128],
    ['the decoy model', '', '', 64],
  ])(
    'on %s its held-out profile is ≤ EigenAttention’s at every grid point of every layer',
    async (_n, dir, text, window) => {
      const settings: CompressSettings = {
        modelDir: dir || DECOY(),
        calib: text || TEXT(),
        eval: text || TEXT(),
        method: 'eigen',
        kvFraction: 0.5,
        allocator: 'knapsack',
        window,
        calibWindows: 8,
        evalWindows: 2,
        stief: { ...FAST, steps: 20 },
      };
      const eigen = await compress(settings);
      const stief = await compress({ ...settings, method: 'stief' });
      expect(stief.profile).toHaveLength(eigen.profile!.length);
      stief.profile!.forEach((layer, l) =>
        layer.forEach((p, i) => {
          expect([p.kRank, p.vRank]).toEqual([eigen.profile![l][i].kRank, eigen.profile![l][i].vRank]);
          expect(p.error).toBeLessThanOrEqual(eigen.profile![l][i].error + 1e-12);
        }),
      );
      expect(stief.kvFraction).toBeLessThanOrEqual(0.5 + 1e-12);
    },
  );
});
