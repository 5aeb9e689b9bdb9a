/**
 * What StiefAttention's training of one layer is given (stief.ts, stief-train.ts): the layer's statistics
 * and windows, the held-out meter, the rank grid and the settings.
 */
import type { KeySpace } from '../core/kv.ts';
import type { ModelSpec } from '../model/types.ts';
import type { HeldoutBatch } from '../runtime/capture.ts';
import type { HeldoutErrors } from '../runtime/layer-error.ts';
import type { ModelRunner } from '../runtime/runner.ts';
import type { StiefSettings } from './stief-settings.ts';
import type { LayerCapture } from './types.ts';

export interface StiefProgress {
  layer: number;
  /** 'keys' or 'values' (sequential), or the joint phase of a key sharing ('shared keys, values'). */
  phase: string;
  step: number;
  steps: number;
  loss: number;
}

export interface StiefContext {
  capture: LayerCapture;
  spec: ModelSpec;
  keySpace: KeySpace;
  runner: ModelRunner;
  /** Kept calibration windows the bases are trained on. */
  train: HeldoutBatch[];
  /** Held-out windows: the start, early stopping, selection, and the profile. */
  meter: HeldoutErrors;
  grid: number[];
  settings?: Partial<StiefSettings>;
  /** Positions of each training window the loss may compare at most (default: every one). */
  rowsPerWindow?: number;
  onStep?: (p: StiefProgress) => void;
  signal?: AbortSignal;
}
