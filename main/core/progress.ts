/**
 * Progress and cancellation, as every long stage reports and honours them: a stage, the layer, how much
 * is done and the time left, and an AbortSignal checked between units of work.
 */
import { RankwiseError } from './errors.ts';

export interface Progress {
  stage: string;
  /** Layer being processed (0-based), or −1 for embedding/head work. */
  layer: number;
  done: number;
  total: number;
  /** Seconds left, from the pace so far; null before the first unit finishes. */
  etaSeconds: number | null;
  /** Optimiser step, for stages that train (StiefAttention). */
  step?: number;
}

export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new RankwiseError('cancelled', 'the job was cancelled');
}

/** Progress with an ETA from the average pace of the units done so far. */
export function progressTracker(stage: string, total: number, onProgress?: (p: Progress) => void) {
  const start = performance.now();
  let done = 0;
  return (layer: number) => {
    done += 1;
    const elapsed = (performance.now() - start) / 1000;
    onProgress?.({ stage, layer, done, total, etaSeconds: (elapsed / done) * (total - done) });
  };
}

/**
 * Progress counted in what the user asked for (windows) while the work advances in finer units (one
 * layer of one group of windows): `done` is the work finished so far expressed in items, rounded down,
 * so the count never runs ahead of the work and the last event reads items/items. Counting the units
 * themselves showed `7/7` for 8 windows, which reads as a window lost.
 */
export function itemProgressTracker(
  stage: string,
  units: number,
  items: number,
  onProgress?: (p: Progress) => void,
) {
  const start = performance.now();
  let done = 0;
  return (layer: number) => {
    done += 1;
    const elapsed = (performance.now() - start) / 1000;
    const counted = done >= units ? items : Math.floor((items * done) / units);
    onProgress?.({
      stage,
      layer,
      done: counted,
      total: items,
      etaSeconds: (elapsed / done) * (units - done),
    });
  };
}
