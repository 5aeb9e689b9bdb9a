/**
 * Choosing the next token from a row of logits: greedy by default (what the comparison and the tests
 * rely on), or temperature / top-k / top-p sampling from a seeded generator, so a sampled run can be
 * repeated exactly.
 */
import { badInput } from '../core/errors.ts';
import { mulberry32 } from '../model/prng.ts';
import { argmax } from '../runtime/kv-session.ts';

export interface SamplingSettings {
  /** 0 or absent: greedy. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or absent: all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 or absent: all). */
  topP?: number;
  seed?: number;
}

export type Sampler = (logits: Float32Array, from?: number, to?: number) => number;

/** Rejects settings that would sample nothing or everything by accident; `where` names the source. */
export function checkSampling(s: SamplingSettings, where = 'sampling'): void {
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (s.temperature !== undefined && (!num(s.temperature) || s.temperature < 0 || s.temperature > 100)) {
    throw badInput(`${where}: the temperature must be a number from 0 to 100, got ${String(s.temperature)}`);
  }
  if (s.topK !== undefined && (!Number.isSafeInteger(s.topK) || s.topK < 0)) {
    throw badInput(`${where}: top-k must be a whole number ≥ 0, got ${String(s.topK)}`);
  }
  if (s.topP !== undefined && (!num(s.topP) || s.topP <= 0 || s.topP > 1)) {
    throw badInput(`${where}: top-p must be a number in (0, 1], got ${String(s.topP)}`);
  }
  if (s.seed !== undefined && (!Number.isSafeInteger(s.seed) || s.seed < 0)) {
    throw badInput(`${where}: the seed must be a whole number ≥ 0, got ${String(s.seed)}`);
  }
}

export function isGreedy(s: SamplingSettings | undefined): boolean {
  return !s || !s.temperature;
}

export function makeSampler(s: SamplingSettings = {}): Sampler {
  checkSampling(s);
  if (isGreedy(s)) return argmax;
  const T = s.temperature!;
  const random = mulberry32(s.seed ?? 0);
  return (logits, from = 0, to = logits.length) => {
    const n = to - from;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[from + b] - logits[from + a]);
    const keep = s.topK ? Math.min(s.topK, n) : n;
    const max = logits[from + order[0]];
    const weights = new Float64Array(keep);
    let total = 0;
    for (let i = 0; i < keep; i++) {
      weights[i] = Math.exp((logits[from + order[i]] - max) / T);
      total += weights[i];
    }
    // top-p over the (already top-k) candidates, most likely first; the first token always stays
    let cut = keep;
    if (s.topP !== undefined && s.topP < 1) {
      let mass = 0;
      for (let i = 0; i < keep; i++) {
        mass += weights[i] / total;
        if (mass >= s.topP) {
          cut = i + 1;
          break;
        }
      }
    }
    let kept = 0;
    for (let i = 0; i < cut; i++) kept += weights[i];
    let u = random() * kept;
    for (let i = 0; i < cut; i++) {
      u -= weights[i];
      if (u < 0) return order[i];
    }
    return order[cut - 1];
  };
}
