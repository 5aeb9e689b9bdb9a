/**
 * Thin keys with fine-tuning on stories260K, the docs protocol (calibration: the first 16 windows of 512
 * of the TinyStories excerpt's first half; evaluation: 64 windows of its second half): at a quarter of
 * the key cache (k = 2 of 8, values full), fine-tuning the thin key and absorbed query projections closes
 * at least half of the perplexity gap between plain thin keys and the original model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docsProtocolTexts } from '../../bench/docs-protocol.ts';
import { compress, type CompressSettings } from '../../main/jobs/compress.ts';
import { STORIES_DIR, tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-finetune-');
let texts = { calib: '', evalFile: '' };
beforeAll(() => (texts = docsProtocolTexts(tmp.dir)));
afterAll(() => tmp.cleanup());

describe('thin keys at k = 2 of 8, values full', () => {
  it('fine-tuning closes at least half of the gap to the original', { timeout: 600_000 }, async () => {
    const s: CompressSettings = {
      modelDir: STORIES_DIR,
      calib: texts.calib,
      eval: texts.evalFile,
      method: 'thinkeys',
      ranks: { k: 2, v: 8 },
      window: 512,
      calibWindows: 16,
      evalWindows: 64,
    };
    const plain = await compress(s);
    const tuned = await compress({ ...s, finetune: { steps: 150 } });
    const { original } = plain.perplexity;
    const closed =
      (plain.perplexity.compressed - tuned.perplexity.compressed) / (plain.perplexity.compressed - original);
    expect(plain.perplexity.compressed).toBeGreaterThan(original * 1.2);
    expect(closed).toBeGreaterThanOrEqual(0.5);
    // only keys were compressed, so only keys were trained; every layer's held-out loss fell
    for (const l of tuned.finetune!.layers) expect(l.heldoutLoss.best).toBeLessThan(l.heldoutLoss.start);
    expect(tuned.kvBytesPerToken).toEqual(plain.kvBytesPerToken);
  });
});
