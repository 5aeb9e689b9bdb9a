/** Numbers as the wizard shows them. Memory is in binary units (KiB, MiB, GiB), as the engine reports it. */

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '–';
  const sign = bytes < 0 ? '−' : '';
  let v = Math.abs(bytes);
  let u = 0;
  while (v >= 1024 && u < BINARY_UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${sign}${v.toFixed(digits)} ${BINARY_UNITS[u]}`;
}

export const GiB = 2 ** 30;

export function formatGiB(bytes: number, digits = 2): string {
  return `${(bytes / GiB).toFixed(digits)} GiB`;
}

/** Parameter counts: 124 M, 1.1 B. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)} K`;
  return String(n);
}

export function formatTokens(n: number): string {
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}K`;
  return n.toLocaleString('en-US');
}

export function formatSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  if (s < 1) return '< 1 s';
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m - h * 60} min`;
}

export function formatPercent(fraction: number, digits = 0): string {
  return `${(fraction * 100).toFixed(digits)} %`;
}

/** Relative errors span decades (1e-7 at full rank, 0.3 at rank 1): significant digits, not fixed ones. */
export function formatError(e: number): string {
  if (!Number.isFinite(e)) return '–';
  if (e === 0) return '0';
  if (e < 1e-3) return e.toExponential(1);
  return e.toPrecision(2);
}
