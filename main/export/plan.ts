/** A finished compression job as the export takes it: the per-layer compressions and where they came from. */
import type { CompressReport } from '../contract/report.ts';
import type { LayerCompression, MethodId } from '../core/kv.ts';
import type { Sampling } from '../data/windows.ts';

/**
 * What an export needs from a finished compression: the per-layer compressions (bases in memory), the
 * source model, and how the calibration was drawn (recorded in the exported config).
 */
export interface CompressionPlan {
  modelDir: string;
  method: MethodId;
  /** Per layer; null leaves the layer as it was. */
  layers: (LayerCompression | null)[];
  calibration: { source: string; windows: number; window: number; seed: number; sampling: Sampling };
  /** The evaluation text, whose first windows the export's verification runs. */
  evalSource: string;
  report: CompressReport;
}
