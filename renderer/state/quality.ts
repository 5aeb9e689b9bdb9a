/**
 * When a result costs too much quality: the measured perplexity change against the threshold the user set
 * (wizard state `warnAbove`, per cent). Only measured numbers are judged; the engine's estimate predicts
 * memory and time, not perplexity, so nothing is said before the run.
 */
import type { CompressReport } from '../../main/contract/index.ts';
import { parseDecimal } from './settings.ts';

/** Perplexity change of the job's own allocation, per cent (+227 means 3.27 times the original). */
export function perplexityChange(result: Pick<CompressReport, 'perplexity'>): number {
  const { original, compressed } = result.perplexity;
  return (compressed / original - 1) * 100;
}

/** The threshold as typed ("10", "2.5"), or NaN. */
export function parseThreshold(text: string): number {
  const t = text.trim().replace(/%$/, '').trim();
  const n = parseDecimal(t);
  return n >= 0 ? n : NaN;
}

export interface QualityWarning {
  change: number;
  threshold: number;
  /** Ten times past the threshold: shown as an error rather than a warning. */
  severe: boolean;
}

/** The warning to show for `result`, or null when its change is within the threshold (or unknown). */
export function qualityWarning(
  result: Pick<CompressReport, 'perplexity'> | null | undefined,
  warnAbove: string,
): QualityWarning | null {
  if (!result) return null;
  const change = perplexityChange(result);
  const threshold = parseThreshold(warnAbove);
  if (!Number.isFinite(change) || !Number.isFinite(threshold) || change <= threshold) return null;
  return { change, threshold, severe: change > 10 * Math.max(threshold, 1) };
}

export function formatChange(change: number): string {
  return `${change >= 0 ? '+' : '−'}${Math.abs(change).toFixed(change >= 100 ? 0 : 1)} %`;
}
