import { describe, expect, it } from 'vitest';
import { DIFFICULTY_BANDS, shiftedIncrease } from '../../main/core/allocate/text-shift.ts';
import { mulberry32 } from '../../main/model/prng.ts';

const rng = mulberry32(7);
const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;

describe('the NLL increase carried from the calibration text to the evaluation text', () => {
  const original = Float64Array.from({ length: 4000 }, () => 4 * rng());
  const compressed = original.map((v) => v + 0.3 * rng() + (v > 2 ? 0.5 : 0.1));

  it('is the calibration mean when the evaluation text is as hard, and with one band', () => {
    expect(shiftedIncrease({ original, compressed }, original)).toBeCloseTo(
      mean(compressed) - mean(original),
      12,
    );
    const harder = original.map((v) => v + 1);
    expect(shiftedIncrease({ original, compressed }, harder, 1)).toBeCloseTo(
      mean(compressed) - mean(original),
      12,
    );
  });

  it('weights each difficulty band as the evaluation tokens fall in it', () => {
    // a loss that depends on the difficulty alone, constant per band: the prediction is exact
    const bands = 4;
    const sorted = Float64Array.from(original).sort();
    const edges = [1, 2, 3].map((i) => sorted[(i * original.length) / bands]);
    const band = (v: number) => edges.filter((e) => v >= e).length;
    const loss = [0.1, 0.7, 0.4, 0.05];
    const stepped = original.map((v) => v + loss[band(v)]);
    const evalTokens = Float64Array.from({ length: 999 }, () => 4 * rng() ** 2); // mostly easy tokens
    const want = mean(Array.from(evalTokens, (v) => loss[band(v)]));
    expect(shiftedIncrease({ original, compressed: stepped }, evalTokens, bands)).toBeCloseTo(want, 12);
    // the easy evaluation text loses less than the calibration text's mean says
    expect(want).toBeLessThan(mean(stepped) - mean(original));
  });

  it('gives a band no calibration token reaches its nearest band’s mean', () => {
    // half the calibration tokens tie at the lowest value: the lowest bands are empty below the tie
    const tied = Float64Array.from({ length: 80 }, (_, i) => (i < 40 ? 1 : 1 + i / 10));
    const worse = tied.map((v, i) => v + (i < 40 ? 0.2 : 0.6));
    const below = Float64Array.from([0.5, 0.5]);
    expect(shiftedIncrease({ original: tied, compressed: worse }, below, DIFFICULTY_BANDS)).toBeCloseTo(
      0.2,
      12,
    );
  });

  it('refuses mismatched inputs', () => {
    expect(() => shiftedIncrease({ original, compressed: compressed.subarray(1) }, original)).toThrow(
      /matching/,
    );
    expect(() => shiftedIncrease({ original, compressed }, new Float64Array(0))).toThrow(/matching/);
  });
});
