/**
 * The report's JSON promises camelCase keys (main/contract/report.ts). Records keyed by data rather than
 * by field names are exempt: `seconds` maps stage names ("load", "eval compressed") to times. The report
 * holds no config.json field under its Hugging Face name (model.info is translated, `kv_compression` stays
 * in config.json), so nothing else is exempt.
 */
export const DATA_KEYED = new Set(['seconds']);

const CAMEL = /^[a-z][a-zA-Z0-9]*$/;

/** Every key that is not camelCase, as a path (`$.compress.layers[0].k_rank`), records keyed by data skipped. */
export function nonCamelKeys(
  value: unknown,
  dataKeyed: ReadonlySet<string> = DATA_KEYED,
  at = '$',
): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => nonCamelKeys(v, dataKeyed, `${at}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const here = `${at}.${k}`;
    const own = CAMEL.test(k) ? [] : [here];
    return dataKeyed.has(k) ? own : [...own, ...nonCamelKeys(v, dataKeyed, here)];
  });
}
