/**
 * What a compress job is asked (its settings) and what its caller hears along the way (its options): apart
 * from compress.ts, so the stages under stages/ share them without importing the job that runs them.
 */
import type { ProfilePoint } from '../core/allocate/index.ts';
import type { KeySpaceSetting } from '../contract/report.ts';
import type { KeySpace, MethodId, Objective } from '../core/kv.ts';
import type { Progress } from '../core/progress.ts';
import type { Sampling } from '../data/windows.ts';
import type { StiefSettings } from '../methods/stief-settings.ts';
import type { Device } from '../runtime/engine.ts';
import type { StoredLayer } from './layer-store.ts';

export interface CompressSettings {
  modelDir: string;
  calib: string;
  eval: string;
  method: MethodId;
  /** Fixed per-head ranks: skips allocation. */
  ranks?: { k: number; v: number };
  /** Error budget: bound on the weighted mean relative layer-output error. */
  budget?: number;
  /** Memory target: fraction of the original KV cache bytes. */
  kvFraction?: number;
  /**
   * Memory target as the perplexity increase accepted, a fraction (0.05 for 5 %): the smallest cache whose
   * predicted perplexity stays within it, by the end-to-end objective.
   */
  maxPplIncrease?: number;
  /**
   * What the allocator minimises: the layers' predicted end-to-end effect (`e2e`, probes of each layer's
   * effect on the model's NLL) or their summed output errors (`layer`). Default: stages/objective.ts.
   */
  objective?: Objective;
  keySpace?: KeySpaceSetting;
  window?: number;
  calibWindows?: number;
  /** Calibration windows held out to measure layer errors (default a quarter, 1…8). */
  heldoutWindows?: number;
  /**
   * Positions of each held-out window the error-rank profile compares (default: every one on a narrow
   * model, 32 from hidden size 512 up; runtime/layer-sweep.ts).
   */
  profileTokens?: number;
  evalWindows?: number;
  calibSampling?: Sampling;
  seed?: number;
  device?: Device;
  /** onnxruntime intra-op threads (default: all cores); a job beside a UI leaves one core to it. */
  threads?: number;
  /** Layer weights w_ℓ of the allocator (default 1). */
  layerWeights?: number[];
  /** EigenAttention's own threshold sweep, or the knapsack (default: sweep for eigen with a budget). */
  allocator?: 'knapsack' | 'sweep';
  /** StiefAttention training: steps, learning rate, and how many calibration windows it trains on. */
  stief?: Partial<StiefSettings> & { trainWindows?: number };
  /** Fine-tuning of the compressed projections after the fit: steps per layer and learning rate. */
  finetune?: { steps: number; lr?: number };
}

export interface CompressOptions {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /** The job cache: finished layers are loaded from it instead of being fitted again, and saved to it. */
  layerStore?: {
    load(layer: number): Promise<StoredLayer | null>;
    save(layer: StoredLayer, ranks: number[], d: number): Promise<void>;
  };
  /** Each layer's profile as soon as it is measured (or loaded): the live curves of the UI. */
  onLayer?: (e: { layer: number; keySpace: KeySpace; points: ProfilePoint[]; cached: boolean }) => void;
}
