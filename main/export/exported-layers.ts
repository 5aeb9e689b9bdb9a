/**
 * What the report says of each exported layer. An export may override the job's ranks (the review's hand
 * edits, ExportRequest.ranks), so the report's layers come from the layouts written to config.json, never
 * from the job's allocation; the error shown for a layer must still be one the job measured.
 */
import type {
  CompressReport,
  ExportedCompressReport,
  ExportedLayerReport,
  JobAllocation,
  RankEdit,
} from '../contract/report.ts';
import type { KeySpace } from '../core/kv.ts';

/** A layer's cache as written (model/kv-layout.ts's KvLayerLayout: ranks of d for an uncompressed side). */
export interface WrittenLayout {
  kRank: number;
  vRank: number;
  keySpace: KeySpace;
}

/**
 * Per layer, the written ranks and the job's error at them: the job's own figure for a layer it allocated
 * so, else its profile's point at those ranks (in the same key space), else null (not measured); and the
 * layers whose ranks differ from the job's.
 */
export function exportedLayers(
  job: CompressReport,
  layouts: readonly WrittenLayout[],
): { layers: ExportedLayerReport[]; edits: RankEdit[] } {
  const byLayer = new Map(job.layers.map((l) => [l.layer, l]));
  const edits: RankEdit[] = [];
  const layers = layouts.map((w, layer): ExportedLayerReport => {
    const own = byLayer.get(layer);
    const kept = own !== undefined && own.kRank === w.kRank && own.vRank === w.vRank;
    if (own && !kept) {
      edits.push({
        layer,
        job: { kRank: own.kRank, vRank: own.vRank },
        exported: { kRank: w.kRank, vRank: w.vRank },
      });
    }
    let error: number | null = null;
    if (kept && own.keySpace === w.keySpace) error = own.error;
    else if (own?.keySpace === w.keySpace) {
      // a job with key space auto kept, per layer, the profile of the space it chose: only that one applies
      const point = job.profile?.[layer]?.find((p) => p.kRank === w.kRank && p.vRank === w.vRank);
      if (point) error = point.error;
    }
    return { layer, kRank: w.kRank, vRank: w.vRank, keySpace: w.keySpace, error };
  });
  return { layers, edits };
}

/**
 * The report's `compress` section for an export: the job's report with the exported layers, cache and
 * perplexity in place of the job's, which move to `jobAllocation`.
 */
export function exportedCompressReport(
  job: CompressReport,
  layouts: readonly WrittenLayout[],
  exported: { kvBytesPerToken: { original: number; compressed: number }; perplexity: number },
): ExportedCompressReport {
  const { layers, edits } = exportedLayers(job, layouts);
  const jobAllocation: JobAllocation = {
    layers: job.layers,
    kvBytesPerToken: job.kvBytesPerToken,
    kvFraction: job.kvFraction,
    perplexity: job.perplexity,
  };
  const kv = exported.kvBytesPerToken;
  return {
    ...job,
    perplexity: { original: job.perplexity.original, compressed: exported.perplexity },
    kvBytesPerToken: kv,
    kvFraction: kv.compressed / kv.original,
    layers,
    jobAllocation,
    edits,
  };
}
