/**
 * The schema language of the API's arguments, and the one validator that reads it. A schema is plain
 * data (kinds, ranges, enums, path roles, the rules between fields), so the same description serves
 * three walks:
 *  - `check`: the shape (types, ranges, which fields go together), which needs nothing but the value;
 *    returns a fresh copy holding the known fields only, and refuses anything else as bad input naming
 *    the field (`settings.window`, `req.ranks[2].kRank`);
 *  - `checkForModel`: the limits only a model's header knows (ranks within the head dimension, layers
 *    within the model, one weight per layer, a window within the context), on a value `check` passed;
 *  - `pathsIn`: every path in a checked value, with its role, for a host to vet and replace.
 *
 * Each builder also carries the TypeScript type of what it accepts (invariantly), so a schema annotated
 * `Schema<JobSettings>` fails to compile when it and the type drift apart.
 *
 * Dependency-free (main/core only): Electron's main process, its preload bundle, the server and the
 * renderer all load it as it is.
 */
import { badInput, type RankwiseError } from '../core/errors.ts';

// ---------------------------------------------------------------------------------------------------------
// Path roles.

/** What a path argument names, and so how a host vets it (server path pinning, Electron's path registry). */
export type PathRole = 'model-dir' | 'text-file' | 'text-sample' | 'output-dir' | 'listing-dir';
export type PathAccess = 'read' | 'write';
/** The native dialog that grants a path of this role on the desktop. */
export type PathDialog = 'model' | 'data' | 'export';

export interface PathRoleInfo {
  /** read: the engine only reads it; write: the engine creates or replaces it. */
  access: PathAccess;
  kind: 'dir' | 'file';
  /** The call sends the file's contents back (previewData's text): read it through what was checked. */
  content: boolean;
  dialog: PathDialog | null;
  what: string;
}

export const PATH_ROLES: Readonly<Record<PathRole, PathRoleInfo>> = {
  'model-dir': {
    access: 'read',
    kind: 'dir',
    content: false,
    dialog: 'model',
    what: 'a model folder (config.json and .safetensors weights, or a Rankwise export)',
  },
  'text-file': {
    access: 'read',
    kind: 'file',
    content: false,
    dialog: 'data',
    what: 'a text file the job reads (calibration or evaluation)',
  },
  'text-sample': {
    access: 'read',
    kind: 'file',
    content: true,
    dialog: 'data',
    what: 'a text file whose beginning the call sends back',
  },
  'output-dir': {
    access: 'write',
    kind: 'dir',
    content: false,
    dialog: 'export',
    what: 'a folder the export creates or replaces',
  },
  'listing-dir': { access: 'read', kind: 'dir', content: false, dialog: null, what: 'a folder to list' },
};

// ---------------------------------------------------------------------------------------------------------
// Nodes.

/** A limit only the model knows: checked by `checkForModel` once the engine has the model's header. */
export type ModelLimit = 'rank' | 'layer' | 'context';

/** What the model-dependent checks need of a model (ModelSpec has these fields). */
export interface ModelLimits {
  numLayers: number;
  headDim: number;
  maxPositions: number;
}

export interface StringNode {
  kind: 'string';
  maxLength: number;
  /** What to call the value in a refusal ("text", "a job id …"). */
  what: string;
  pattern?: RegExp;
  /** Refuse a blank string with this message (`{at}` stands for where it is). */
  blank?: string;
}

export interface PathNode {
  kind: 'path';
  role: PathRole;
}

export interface IntNode {
  kind: 'int';
  min: number;
  max: number;
  what?: string;
  limit?: ModelLimit;
}

export interface NumberNode {
  kind: 'number';
  gt?: number;
  ge?: number;
  le?: number;
  what: string;
}

export interface BooleanNode {
  kind: 'boolean';
}

export interface EnumNode {
  kind: 'enum';
  values: readonly string[];
}

export interface ListNode {
  kind: 'list';
  items: Node;
  max: number;
  /** Each entry's value of this field appears once. */
  uniqueBy?: string;
  /** One entry per layer of the model (checked against the model); the noun for an entry. */
  perLayer?: string;
}

/** A rule between the fields of one object; `{at}` in a message stands for where the object is. */
export type Rule =
  | { rule: 'exactlyOne'; of: readonly string[] }
  | { rule: 'atMostOne'; of: readonly string[] }
  /** `field` may not be given together with `other`. */
  | { rule: 'excludes'; field: string; other: string; message: string }
  /** `field` (a non-empty object) only when `other` is `equals`; `{value}` stands for `other`'s value. */
  | { rule: 'onlyWhen'; field: string; other: string; equals: string; message: string };

export interface ObjectNode {
  kind: 'object';
  fields: Readonly<Record<string, Node>>;
  required: readonly string[];
  what: string;
  rules: readonly Rule[];
}

/** One of several objects, told apart by which of their keys is present (`{path}` or `{builtin}`). */
export interface OneOfNode {
  kind: 'oneOf';
  what: string;
  /** Keyed by the field that selects the variant. */
  variants: Readonly<Record<string, ObjectNode>>;
}

export type Node =
  StringNode | PathNode | IntNode | NumberNode | BooleanNode | EnumNode | ListNode | ObjectNode | OneOfNode;

/** A node that accepts exactly values of type T (the type is only for the compiler). */
export type Schema<T, N extends Node = Node> = N & { readonly __type?: (value: T) => T };

/** Any schema, whatever it accepts. */
export type AnySchema<N extends Node = Node> = N & { readonly __type?: (value: never) => unknown };

/** The type a schema accepts. */
export type Infer<S> = S extends { readonly __type?: (value: infer T) => unknown } ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] };
type ObjectOf<F extends Record<string, AnySchema>, R extends keyof F> = Simplify<
  { [K in R]: Infer<F[K]> } & { [K in Exclude<keyof F, R>]?: Infer<F[K]> }
>;

// ---------------------------------------------------------------------------------------------------------
// Builders.

export const s = {
  string(opts: { maxLength: number; what?: string; pattern?: RegExp; blank?: string }): Schema<string> {
    return { kind: 'string', what: opts.what ?? 'text', ...opts } as StringNode;
  },
  path(role: PathRole): Schema<string> {
    return { kind: 'path', role };
  },
  int(min: number, max: number, opts: { what?: string; limit?: ModelLimit } = {}): Schema<number> {
    return { kind: 'int', min, max, ...opts };
  },
  number(range: { gt?: number; ge?: number; le?: number }, what: string): Schema<number> {
    return { kind: 'number', ...range, what };
  },
  boolean(): Schema<boolean> {
    return { kind: 'boolean' };
  },
  enum<const V extends string>(values: readonly V[]): Schema<V> {
    return { kind: 'enum', values };
  },
  list<T>(
    items: Schema<T>,
    opts: { max: number; uniqueBy?: keyof T & string; perLayer?: string },
  ): Schema<T[]> {
    return { kind: 'list', items, ...opts } as ListNode;
  },
  object<F extends Record<string, AnySchema>, const R extends keyof F & string = never>(
    fields: F,
    opts: { required?: readonly R[]; what?: string; rules?: readonly Rule[] } = {},
  ): Schema<ObjectOf<F, R>, ObjectNode> {
    return {
      kind: 'object',
      fields,
      required: opts.required ?? [],
      what: opts.what ?? 'an object',
      rules: opts.rules ?? [],
    };
  },
  /** `variants` keyed by the field that selects each: `{path: object({path}), builtin: object({builtin})}`. */
  oneOf<V extends Record<string, AnySchema<ObjectNode>>>(
    what: string,
    variants: V,
  ): Schema<Infer<V[keyof V]>> {
    return { kind: 'oneOf', what, variants } as OneOfNode;
  },
};

// ---------------------------------------------------------------------------------------------------------
// The shape.

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `a list of ${v.length}`;
  return isRecord(v) ? 'an object' : `a ${typeof v}`;
}

function fail(at: string, want: string, v: unknown): RankwiseError {
  return badInput(`${at} must be ${want}, got ${show(v)}`);
}

const fill = (template: string, at: string, value = ''): string =>
  template.replaceAll('{at}', at).replaceAll('{value}', value);

/** "a, b or c" */
function listed(names: readonly string[], last: string): string {
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} ${last} ${names.at(-1)}`;
}

/** Longest path accepted (Linux's PATH_MAX). */
export const MAX_PATH = 4096;

function checkPathString(v: unknown, at: string): string {
  if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_PATH || v.includes('\0')) {
    throw fail(at, `a string (a path of 1 to ${MAX_PATH} characters, no NUL)`, v);
  }
  return v;
}

/**
 * The value as `node` describes it, or a bad-input error naming `at` (the field). Objects come back fresh,
 * holding the known fields only; an undefined field counts as absent (structured clone keeps them, JSON
 * drops them); any other key is refused, so a misspelt option is an error rather than silently ignored.
 */
export function check<T>(node: Schema<T>, v: unknown, at: string): T;
export function check(node: Node, v: unknown, at: string): unknown;
export function check(node: Node, v: unknown, at: string): unknown {
  switch (node.kind) {
    case 'string': {
      if (typeof v !== 'string') throw fail(at, node.what, v);
      if (node.blank !== undefined && v.trim() === '') throw badInput(fill(node.blank, at));
      if (v.length > node.maxLength) throw badInput(`${at} is longer than ${node.maxLength} characters`);
      if (node.pattern && !node.pattern.test(v)) throw fail(at, node.what, v);
      return v;
    }
    case 'path':
      return checkPathString(v, at);
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < node.min || v > node.max) {
        throw fail(at, node.what ?? `a whole number from ${node.min} to ${node.max}`, v);
      }
      return v;
    case 'number': {
      const ok =
        typeof v === 'number' &&
        Number.isFinite(v) &&
        (node.gt === undefined || v > node.gt) &&
        (node.ge === undefined || v >= node.ge) &&
        (node.le === undefined || v <= node.le);
      if (!ok) throw fail(at, node.what, v);
      return v;
    }
    case 'boolean':
      if (typeof v !== 'boolean') throw fail(at, 'true or false', v);
      return v;
    case 'enum':
      if (typeof v !== 'string' || !node.values.includes(v)) {
        throw fail(at, `one of ${node.values.map((x) => `"${x}"`).join(', ')}`, v);
      }
      return v;
    case 'list': {
      if (!Array.isArray(v)) throw fail(at, 'a list', v);
      if (v.length > node.max) throw badInput(`${at} may hold at most ${node.max} entries, got ${v.length}`);
      const out = v.map((x, i) => check(node.items, x, `${at}[${i}]`));
      if (node.uniqueBy !== undefined) {
        const key = node.uniqueBy;
        const seen = new Set<unknown>();
        out.forEach((entry, i) => {
          const k = (entry as Record<string, unknown>)[key];
          if (seen.has(k)) throw badInput(`${at}[${i}].${key} ${show(k)} is given more than once`);
          seen.add(k);
        });
      }
      return out;
    }
    case 'object':
      return checkObject(node, v, at, node.what);
    case 'oneOf': {
      if (!isRecord(v)) throw fail(at, node.what, v);
      const present = Object.keys(node.variants).filter((key) => v[key] !== undefined);
      if (present.length > 1) throw badInput(`${at} must be ${node.what}, not both`);
      if (present.length === 0) throw fail(at, node.what, v);
      return checkObject(node.variants[present[0]], v, at, node.what);
    }
  }
}

function checkObject(node: ObjectNode, v: unknown, at: string, what: string): Record<string, unknown> {
  if (!isRecord(v)) throw fail(at, what, v);
  const names = Object.keys(node.fields);
  for (const key of Object.keys(v)) {
    if (!Object.hasOwn(node.fields, key) && v[key] !== undefined) {
      throw badInput(`${at}.${key} is not a field of ${at}; it has ${names.join(', ')}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const key of names) {
    const x = v[key];
    if (x === undefined) {
      if (node.required.includes(key)) throw badInput(`${at}.${key} is missing`);
      continue;
    }
    out[key] = check(node.fields[key], x, `${at}.${key}`);
  }
  for (const rule of node.rules) applyRule(rule, out, at);
  return out;
}

function applyRule(rule: Rule, o: Record<string, unknown>, at: string): void {
  const has = (key: string) => o[key] !== undefined;
  switch (rule.rule) {
    case 'exactlyOne': {
      const given = rule.of.filter(has);
      if (given.length !== 1) {
        const names = rule.of.map((k) => `${at}.${k}`);
        throw badInput(
          `give exactly one of ${listed(names, 'or')}` +
            (given.length ? `; got ${given.map((k) => `${at}.${k}`).join(' and ')}` : ''),
        );
      }
      return;
    }
    case 'atMostOne':
      if (rule.of.filter(has).length > 1) {
        throw badInput(
          `give at most one of ${listed(
            rule.of.map((k) => `${at}.${k}`),
            'and',
          )}`,
        );
      }
      return;
    case 'excludes':
      if (has(rule.field) && has(rule.other)) throw badInput(fill(rule.message, at));
      return;
    case 'onlyWhen': {
      const value = o[rule.field];
      const nonEmpty = isRecord(value) ? Object.keys(value).length > 0 : value !== undefined;
      if (nonEmpty && o[rule.other] !== rule.equals) {
        throw badInput(fill(rule.message, at, String(o[rule.other])));
      }
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The model's limits.

/** Checks a value `check` accepted against the limits only the model knows; throws bad input naming the field. */
export function checkForModel(node: Node, v: unknown, m: ModelLimits, at: string): void {
  if (v === undefined) return;
  switch (node.kind) {
    case 'int': {
      const n = v as number;
      if (node.limit === 'rank' && n > m.headDim) {
        throw badInput(
          `${at} must be an integer from 1 to the head dimension ${m.headDim} (ranks are per KV head), got ${n}`,
        );
      }
      if (node.limit === 'layer' && n >= m.numLayers) {
        throw badInput(
          `${at} must be a layer of the model, 0 to ${m.numLayers - 1} (it has ${m.numLayers}), got ${n}`,
        );
      }
      if (node.limit === 'context' && n > m.maxPositions) {
        throw badInput(`${at} must be at most the model's context of ${m.maxPositions} tokens, got ${n}`);
      }
      return;
    }
    case 'list': {
      const list = v as unknown[];
      if (node.perLayer !== undefined && list.length !== m.numLayers) {
        throw badInput(
          `${at} must hold ${m.numLayers} ${node.perLayer}, one per layer of the model, got ${list.length}`,
        );
      }
      list.forEach((x, i) => checkForModel(node.items, x, m, `${at}[${i}]`));
      return;
    }
    case 'object':
      for (const [key, field] of Object.entries(node.fields)) {
        checkForModel(field, (v as Record<string, unknown>)[key], m, `${at}.${key}`);
      }
      return;
    case 'oneOf': {
      const key = Object.keys(node.variants).find((k) => (v as Record<string, unknown>)[k] !== undefined);
      if (key !== undefined) checkForModel(node.variants[key], v, m, at);
      return;
    }
    default:
      return;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Paths.

/** A path-valued field of a checked value, and how to put another path (its real one) in its place. */
export interface PathField {
  path: string;
  role: PathRole;
  access: PathAccess;
  /** The call sends the file's contents back: a host must read it through what it checked. */
  content: boolean;
  /** Where the field is (`req.source.path`). */
  at: string;
  replace(p: string): void;
}

/**
 * Every path in a value `check` returned, in schema order. `replace` writes into the value (or, for a
 * path that is the value itself, through `set`).
 */
export function pathsIn(node: Node, v: unknown, at: string, set?: (p: string) => void): PathField[] {
  if (v === undefined) return [];
  switch (node.kind) {
    case 'path': {
      const info = PATH_ROLES[node.role];
      if (typeof v !== 'string' || !set) return [];
      return [{ path: v, role: node.role, access: info.access, content: info.content, at, replace: set }];
    }
    case 'list':
      return (v as unknown[]).flatMap((x, i, all) =>
        pathsIn(node.items, x, `${at}[${i}]`, (p) => (all[i] = p)),
      );
    case 'object': {
      const o = v as Record<string, unknown>;
      return Object.entries(node.fields).flatMap(([key, field]) =>
        pathsIn(field, o[key], `${at}.${key}`, (p) => (o[key] = p)),
      );
    }
    case 'oneOf': {
      const key = Object.keys(node.variants).find((k) => (v as Record<string, unknown>)[k] !== undefined);
      return key === undefined ? [] : pathsIn(node.variants[key], v, at, set);
    }
    default:
      return [];
  }
}
