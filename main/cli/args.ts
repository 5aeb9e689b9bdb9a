/**
 * The command line's options, each defined once in a table per command: the parser, the checks of each
 * value and `--help` are all derived from that table, so help cannot drift from what the code accepts.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEVICES, type Device } from '../contract/api.ts';
import { badInput } from '../core/errors.ts';

/** One option: how it is written, what it takes, and what it means. */
export interface Opt<T> {
  /** The value's name in usage and help (FILE, N); absent for a flag. */
  arg?: string;
  short?: string;
  /** One line for `--help`. */
  help: string;
  /** What values it takes, in words (`integer ≥ 2`, `one of …`). */
  type: string;
  /** The given text as a value; throws a bad-input error that names the option. */
  read: (raw: string, flag: string) => T;
  /** The value when the option is absent; the code takes it from here, and so does `--help`. */
  default?: T;
  /**
   * What absence means when the command passes no value of its own (the engine then decides), or a
   * friendlier rendering of `default`.
   */
  defaultText?: string;
  required?: boolean;
  /** May be given more than once; the values add up (the value is a list). */
  multiple?: boolean;
  /** Help's heading for the option. */
  group?: string;
}

export type OptionTable = Record<string, Opt<unknown>>;

/** An option's value: always there when it is required or has a default. */
type ValueOf<O> =
  O extends Opt<infer T> ? (O extends { required: true } | { default: T } ? T : T | undefined) : never;
export type Values<S extends OptionTable> = { -readonly [K in keyof S]: ValueOf<S[K]> };

export interface CommandSpec<S extends OptionTable = OptionTable> {
  name: string;
  /** One line for `rankwise --help`. */
  summary: string;
  /** Positional arguments, each required. */
  args: readonly { name: string; help: string }[];
  /**
   * Either-or choices, each a list of alternatives (an alternative: options that go together), of which
   * exactly one is given; said in the usage line (the command or the engine checks it).
   */
  oneOf?: readonly (readonly (readonly string[])[])[];
  options: S;
  /** Whole invocations, each a line a user can paste. */
  examples: readonly string[];
  /** Lines after the options: how options combine, what the output is. */
  notes?: readonly string[];
}

// ---------------------------------------------------------------------------------------------------------
// Option builders: each knows its checks and how help should describe it.

type Extra<T> = Pick<Opt<T>, 'short' | 'defaultText' | 'required' | 'group'>;
type WithDefault<T> = Opt<T> & { default: T };

export function flag(help: string, extra: Pick<Opt<boolean>, 'short' | 'group'> = {}): WithDefault<boolean> {
  return {
    help,
    type: 'flag',
    read: () => true,
    default: false,
    defaultText: 'off',
    ...extra,
  };
}

/** A string taken as it is (a path, a prompt, a name). */
export function text<const E extends Extra<string> & { default?: string }>(
  arg: string,
  help: string,
  extra?: E,
): Opt<string> & E {
  return { arg, help, type: arg === 'TEXT' ? 'text' : 'path', read: (raw: string) => raw, ...(extra as E) };
}

/** A string that may be given more than once (`--root A --root B`). */
export function repeated(arg: string, help: string, extra: Extra<string[]> = {}): Opt<string[]> {
  return { arg, help, type: 'path, repeatable', read: (raw) => [raw], multiple: true, ...extra };
}

export function int<const E extends Extra<number> & { min?: number; max?: number; default?: number }>(
  arg: string,
  help: string,
  extra?: E,
): Opt<number> & E {
  const { min = 1, max } = extra ?? {};
  const range = max === undefined ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
  return {
    arg,
    help,
    type: range.replace(/^an /, ''),
    read: (raw: string, name: string) => {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
        throw badInput(`${name} must be ${range}, got "${raw}"`);
      }
      return n;
    },
    ...(extra as E),
  };
}

export function num(
  arg: string,
  help: string,
  { positive = false, ...extra }: Extra<number> & { positive?: boolean } = {},
): Opt<number> {
  const what = positive ? 'a positive number' : 'a number';
  return {
    arg,
    help,
    type: positive ? 'number > 0' : 'number',
    read: (raw, name) => {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(n) || (positive && !(n > 0)))
        throw badInput(`${name} must be ${what}, got "${raw}"`);
      return n;
    },
    ...extra,
  };
}

/** A share of something: `0.5` or `50%`, in (0, 1]. */
export function fraction(arg: string, help: string, extra: Extra<number> = {}): Opt<number> {
  return {
    arg,
    help,
    type: 'fraction in (0, 1], or a percentage: 0.5 or 50%',
    read: parseFraction,
    ...extra,
  };
}

/** `0.05` or `5%` as a number (NaN for anything else). */
function shareOf(raw: string): number {
  const s = raw.trim();
  const percent = s.endsWith('%');
  const body = percent ? s.slice(0, -1).trim() : s;
  // Number('') is 0 and Number('0x10') is 16: only a plain decimal is a fraction
  return /^[+]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(body) ? Number(body) / (percent ? 100 : 1) : NaN;
}

/** An increase accepted: `0.05` or `5%`, in (0, max]. */
export function increase(arg: string, help: string, max: number, extra: Extra<number> = {}): Opt<number> {
  const range = `above 0 and at most ${max * 100} % (a fraction such as 0.05, or a percentage such as 5%)`;
  return {
    arg,
    help,
    type: `fraction in (0, ${max}], or a percentage: 0.05 or 5%`,
    read: (raw, name) => {
      const n = shareOf(raw);
      if (!(n > 0 && n <= max)) throw badInput(`${name} must be ${range}, got "${raw}"`);
      return n;
    },
    ...extra,
  };
}

export function parseFraction(raw: string, name: string): number {
  const n = shareOf(raw);
  if (!(n > 0 && n <= 1)) {
    throw badInput(
      `${name} must be in (0, 1] (a fraction such as 0.5, or a percentage such as 50%), got "${raw}"`,
    );
  }
  return n;
}

export function choice<const C extends string, const E extends Extra<C> & { default?: C }>(
  arg: string,
  allowed: readonly C[],
  help: string,
  extra?: E,
): Opt<C> & E {
  return {
    arg,
    help,
    type: `one of ${allowed.join(', ')}`,
    read: (raw: string, name: string) => {
      if ((allowed as readonly string[]).includes(raw)) return raw as C;
      const near = nearest(raw, allowed);
      throw badInput(
        `${name} must be one of ${allowed.join(', ')}, got "${raw}"${near ? `; did you mean ${near}?` : ''}`,
      );
    },
    ...(extra as E),
  };
}

/** Comma-separated numbers (`1,1,2.5`). */
export function numbers(arg: string, help: string, extra: Extra<number[]> = {}): Opt<number[]> {
  return {
    arg,
    help,
    type: 'comma-separated numbers',
    read: (raw, name) =>
      raw.split(',').map((w) => {
        const n = w.trim() === '' ? NaN : Number(w);
        if (!Number.isFinite(n)) throw badInput(`${name} must be numbers separated by commas, got "${raw}"`);
        return n;
      }),
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Options several commands share.

export const COMMON = {
  json: flag('print one JSON document on stdout (progress and messages still go to stderr)', {
    group: 'Common',
  }),
  quiet: flag('no progress or notes on stderr (errors are still printed)', { short: 'q', group: 'Common' }),
  help: flag('print this help and exit', { short: 'h', group: 'Common' }),
};

/** Tokens per window, unless a command says otherwise. */
export const DEFAULT_WINDOW = 512;
/** The device a command runs on when none is asked for: the one every machine has. */
export const DEFAULT_DEVICE: Device = 'cpu';

export const deviceOption = (group?: string) =>
  choice('NAME', DEVICES, 'where onnxruntime runs the model (auto: the fastest one present)', {
    default: DEFAULT_DEVICE,
    group,
  });

export const windowOption = (group?: string) =>
  int('N', 'tokens per window; each window is scored on its tokens 2…N', {
    min: 2,
    default: DEFAULT_WINDOW,
    group,
  });

// ---------------------------------------------------------------------------------------------------------
// Parsing.

/** `--name ARG` (and `-s, ` before it when there is a short form). */
export function optionLabel(name: string, o: Opt<unknown>): string {
  return `${o.short ? `-${o.short}, ` : ''}--${name}${o.arg ? ` ${o.arg}` : ''}`;
}

/** The usage line, from the table: arguments, required options, the either-or sets, then [options]. */
export function usage<S extends OptionTable>(spec: CommandSpec<S>): string {
  const label = (name: string) => `--${name}${spec.options[name].arg ? ` ${spec.options[name].arg}` : ''}`;
  const inOneOf = new Set(spec.oneOf?.flat(2) ?? []);
  const required = Object.keys(spec.options).filter((n) => spec.options[n].required && !inOneOf.has(n));
  const sets = (spec.oneOf ?? []).map(
    (alts) => `(${alts.map((alt) => alt.map(label).join(' ')).join(' | ')})`,
  );
  return [
    'rankwise',
    spec.name,
    ...spec.args.map((a) => a.name),
    ...required.map(label),
    ...sets,
    '[options]',
  ].join(' ');
}

const tail = <S extends OptionTable>(spec: CommandSpec<S>) =>
  `; usage: ${usage(spec)} (rankwise ${spec.name} --help says more)`;

function unknownOption(raw: string, known: string[], command: string): never {
  const near = nearest(raw, known);
  throw badInput(
    `unknown option ${raw}; ${near ? `did you mean ${near}?` : `rankwise ${command} --help lists the options`}`,
  );
}

/** Every way of writing the table's options (`--quiet`, `-q`), for suggestions. */
function spellings(options: OptionTable): string[] {
  return Object.entries(options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
}

/**
 * Parses a command line against a command's table: unknown options (with the nearest known one
 * suggested), a value missing or given to a flag, each value's own check, the positional arguments and
 * the required options are bad input (exit 2), each with a one-line message naming the option.
 */
export function parseCommand<S extends OptionTable>(
  argv: string[],
  spec: CommandSpec<S>,
): { values: Values<S>; positionals: string[] } {
  const options = spec.options as OptionTable;
  const config: NonNullable<ParseArgsConfig['options']> = Object.fromEntries(
    Object.entries(options).map(([name, o]) => [
      name,
      { type: o.arg ? 'string' : 'boolean', ...(o.short ? { short: o.short } : {}) },
    ]),
  );
  // Not strict: node's own errors neither suggest nor name the value's problem, and in strict mode a
  // value that starts with "-" (--kv-fraction -1) is refused as ambiguous before it can be checked.
  const { tokens } = parseArgs({
    args: argv,
    options: config,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    const o = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    if (!o) unknownOption(t.rawName, spellings(options), spec.name);
    const flagName = `--${t.name}`;
    if (!o.arg) {
      if (t.value !== undefined) throw badInput(`${flagName} takes no value, got "${t.value}"`);
      values[t.name] = true;
      continue;
    }
    if (t.value === undefined) throw badInput(`${flagName} needs a value (${o.arg})`);
    const v = o.read(t.value, flagName);
    values[t.name] = o.multiple ? [...((values[t.name] as unknown[]) ?? []), ...(v as unknown[])] : v;
  }
  const wanted = spec.args.length;
  if (positionals.length < wanted)
    throw badInput(`missing ${spec.args[positionals.length].name}${tail(spec)}`);
  if (positionals.length > wanted) {
    throw badInput(`unexpected arguments: ${positionals.slice(wanted).join(' ')}${tail(spec)}`);
  }
  for (const [name, o] of Object.entries(options)) {
    if (values[name] !== undefined) continue;
    if (o.required) throw badInput(`missing --${name}${o.arg ? ` ${o.arg}` : ''}${tail(spec)}`);
    if (o.default !== undefined) values[name] = o.default;
  }
  return { values: values as Values<S>, positionals };
}

/** Whether the command line asks for help (before any `--`, after which everything is an argument). */
export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

// ---------------------------------------------------------------------------------------------------------
// The nearest known word, for "did you mean".

/**
 * Edit distance with adjacent transpositions counted as one edit (optimal string alignment), the usual
 * typing slips: a missing, extra, wrong or swapped character.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The known word closest to `typed`: within 2 edits (1 for words of up to 3 letters, where 2 edits would
 * match almost anything), the first of the closest in the list's order; else the one word that contains
 * it (`--fraction` → `--kv-fraction`); else none.
 */
export function nearest(typed: string, known: readonly string[]): string | undefined {
  const bare = (w: string) => w.replace(/^-+/, '').toLowerCase();
  const t = bare(typed);
  // one letter is within an edit of every other letter: no suggestion says anything
  if (t.length < 2) return undefined;
  const limit = t.length <= 3 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const dist = editDistance(t, bare(k));
    if (dist <= limit && dist < bestDistance) {
      best = k;
      bestDistance = dist;
    }
  }
  if (best !== undefined) return best;
  const containing = t.length >= 3 ? known.filter((k) => bare(k).includes(t)) : [];
  return containing.length === 1 ? containing[0] : undefined;
}

/** camelCase keys → snake_case, deeply: the CLI's JSON keeps the snake_case scripts have always read. */
export function snakeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snakeKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snakeKeys(x)]),
    );
  }
  return v;
}
