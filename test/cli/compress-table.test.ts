/** The CLI's compress summary: the objective, the predicted perplexity and the fine-tuning, when there. */
import { describe, expect, it } from 'vitest';
import { compressTable } from '../../main/cli/commands/compress.ts';
import type { CompressReport } from '../../main/contract/report.ts';

const report = (over: Partial<CompressReport> = {}): CompressReport => ({
  model: '/m',
  method: 'kqsvd',
  keySpace: 'auto',
  window: 512,
  calibWindows: 12,
  heldoutWindows: 4,
  evalWindows: 64,
  device: 'cpu',
  perplexity: { original: 7.199, compressed: 8.958 },
  kvBytesPerToken: { original: 1280, compressed: 640 },
  kvFraction: 0.5,
  layers: [{ layer: 0, kRank: 2, vRank: 6, keySpace: 'pre-rope', error: 0.1771 }],
  allocation: { kind: 'memory', target: 0.5, feasible: true, weightedError: 0.13 },
  seconds: { load: 0.2, eval: 4.8 },
  ...over,
});

describe('compressTable', () => {
  it('without the new figures, says none of them', () => {
    const t = compressTable(report());
    expect(t).not.toMatch(/objective|predicted|fine-tuning/);
  });

  it('names the objective, gives the prediction beside the measurement, and the fine-tuning with its warnings', () => {
    const t = compressTable(
      report({
        objective: 'e2e',
        predicted: { nllIncrease: 0.4, perplexity: 10.74 },
        finetune: {
          steps: 300,
          lr: 0.1,
          trainWindows: 4,
          layers: [
            {
              layer: 0,
              steps: 300,
              stopped: 'steps',
              bestStep: 300,
              heldoutLoss: { start: 0.0314, best: 0.0169 },
              trainLoss: { start: 0.03, last: 0.015 },
            },
          ],
          seconds: 12.3,
          warnings: ['layer 3: diverged'],
        },
      }),
    );
    expect(t).toMatch(/allocation +memory 0\.5 \(objective e2e\)/);
    expect(t).toMatch(
      /predicted perplexity +10\.7400 \(from the calibration windows, carried to this text; measured 8\.9580\)/,
    );
    expect(t).toMatch(
      /fine-tuning +1 layers, 300 steps at lr 0\.1: held-out layer loss 0\.0314→0\.0169 \(12\.3 s\); warning: layer 3: diverged/,
    );
  });
});
