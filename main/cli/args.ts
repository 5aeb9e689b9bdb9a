import { parseArgs, type ParseArgsConfig } from 'node:util';
import { badInput } from '../core/errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Options every command takes. */
export const COMMON_OPTIONS = {
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/** node:util parseArgs, with its errors turned into bad-input errors (exit code 2). */
export function parse<O extends Options>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw badInput(e instanceof Error ? e.message.replace(/\. To specify.*$/s, '') : String(e));
  }
}

/** A positive integer option, or the default when absent. */
export function intOption(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw badInput(`--${name} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}

export function onePositional(positionals: string[], what: string, usage: string): string {
  if (positionals.length !== 1) {
    throw badInput(
      positionals.length === 0
        ? `missing ${what}; usage: ${usage}`
        : `unexpected arguments: ${positionals.slice(1).join(' ')}; usage: ${usage}`,
    );
  }
  return positionals[0];
}

/** camelCase keys → snake_case, deeply: the CLI's JSON speaks the contract's snake_case. */
export function snakeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snakeKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snakeKeys(x)]),
    );
  }
  return v;
}
