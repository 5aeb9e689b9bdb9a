/** What every stage of the layer loop shares: the job, the model it runs, the method and its plan. */
import type { KeySpace, LayerGrams } from '../../core/kv.ts';
import type { CompressionMethod, MethodCost, RankPlan } from '../../methods/types.ts';
import type { ModelSpec } from '../../model/types.ts';
import type { ModelRunner } from '../../runtime/runner.ts';
import type { CompressOptions, CompressSettings } from '../settings.ts';

export interface LayerJob {
  s: CompressSettings;
  opts: CompressOptions;
  spec: ModelSpec;
  runner: ModelRunner;
  method: CompressionMethod;
  /** The key spaces each layer is fitted in; the one whose profile is lower is kept. */
  spaces: KeySpace[];
  plan: RankPlan;
  cost: MethodCost;
  /** Per layer, the calibration statistics of its original inputs. */
  grams: LayerGrams[];
}
