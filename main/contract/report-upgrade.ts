/**
 * Reports written before the contract owned its wire types (report version 1) spelled the compress
 * report's keys in snake_case; before version 3 an export's `compress` was the job's allocation. Jobs,
 * plans and exports outlive upgrades, so readers pass what they parse through here: an older shape comes
 * back as today's, a current one unchanged.
 */
import { REPORT_FORMAT, REPORT_VERSION, type CompressReport, type ReportData } from './report.ts';

const camel = (key: string) => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Keys whose values are records keyed by data (stage names), not by field names. */
const RECORDS = new Set(['seconds']);

function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [camel(k), RECORDS.has(k) ? v : camelKeys(v)]),
  );
}

/** Version 1 compress reports always had `key_space` and `kv_bytes_per_token`. */
function isSnakeCase(report: object): boolean {
  return 'key_space' in report || 'kv_bytes_per_token' in report;
}

/** A compress report (a job's result.json, a plan's `report`) in the current casing. */
export function upgradeCompressReport(raw: unknown): CompressReport {
  if (typeof raw !== 'object' || raw === null || !isSnakeCase(raw)) return raw as CompressReport;
  return camelKeys(raw) as CompressReport;
}

/**
 * Before version 3 an export's `compress` was the job's report as it was (with, once it was measured, the
 * files' perplexity): its allocation is the job's, kept as `jobAllocation` as version 3 keeps it. Which
 * layers an export overrode was not recorded, so `edits` stays absent.
 */
function withJobAllocation(c: CompressReport, evaluation: unknown): ReportData['compress'] {
  if (typeof c !== 'object' || c === null || 'jobAllocation' in c) return c as ReportData['compress'];
  const inMemory = (evaluation as { inMemory?: unknown } | undefined)?.inMemory;
  const perplexity = c.perplexity && {
    original: c.perplexity.original,
    compressed: typeof inMemory === 'number' ? inMemory : c.perplexity.compressed,
  };
  const jobAllocation = {
    layers: c.layers,
    kvBytesPerToken: c.kvBytesPerToken,
    kvFraction: c.kvFraction,
    perplexity,
  };
  return { ...c, jobAllocation };
}

/** An export report (report.json, an export job's result) at the current version. */
export function upgradeReportData(raw: unknown): ReportData {
  if (typeof raw !== 'object' || raw === null) return raw as ReportData;
  const r = raw as { format?: unknown; version?: unknown; compress?: unknown; export?: unknown };
  if (r.format !== REPORT_FORMAT || (r.version !== 1 && r.version !== 2)) return raw as ReportData;
  const compress = upgradeCompressReport(r.compress);
  const evaluation = (r.export as { evaluation?: unknown } | undefined)?.evaluation;
  return { ...r, version: REPORT_VERSION, compress: withJobAllocation(compress, evaluation) } as ReportData;
}

/** Whatever a job's result.json holds: an export report, else a compress report, else as it is. */
export function upgradeJobResult(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null) return raw;
  if ((raw as { format?: unknown }).format === REPORT_FORMAT) return upgradeReportData(raw);
  return isSnakeCase(raw) ? upgradeCompressReport(raw) : raw;
}
