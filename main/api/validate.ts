/**
 * The one schema of RankwiseApi's arguments. Every face runs it: the engine (engine-api.ts) checks every
 * call it is given, so the CLI, the browser-mode server, the Electron IPC handlers and in-process callers
 * all meet the same rules; the server's protocol parser and the IPC handlers run its shape checks first
 * (`checkCall`), to refuse a malformed call before any path in it is vetted, and find the paths in a call
 * through `pathFields`. A refusal is a bad-input error whose message names the field (`settings.window`,
 * `req.ranks[2].kRank`).
 *
 * Two levels: the shape (types, ranges, which fields go together), which needs nothing but the value, and
 * the model (`check…ForModel`: ranks within the head dimension, layers within the model, one weight per
 * layer, a window within the context), which the engine runs once it has opened the model's header.
 *
 * Dependency-free on purpose (Electron's main process and the server load it as it is): it imports only
 * errors.ts and the method ids of methods/types.ts, both of which import nothing at run time (a test
 * keeps it so), and types.
 */
import type {
  ApiMethod,
  DataPreviewRequest,
  DataSource,
  ExportRequest,
  JobSettings,
  PathPurpose,
  RankOverride,
  ReallocateRequest,
  TryModel,
  TryRequest,
} from './contract.ts';
import type { KeySpaceSetting } from '../jobs/compress.ts';
import { METHOD_IDS } from '../core/kv.ts';
import { badInput, type RankwiseError } from '../core/errors.ts';

/** Devices a job may ask for (runtime/engine.ts's DEVICES, which cannot be imported here: a test keeps them equal). */
export const DEVICES = [
  'auto',
  'cpu',
  'cuda',
  'dml',
  'coreml',
  'webgpu',
] as const satisfies readonly NonNullable<JobSettings['device']>[];
export const KEY_SPACES = [
  'pre-rope',
  'post-rope',
  'folded',
  'auto',
] as const satisfies readonly KeySpaceSetting[];
export const BUILTIN_TEXTS = ['demo-calibration', 'demo-evaluation'] as const;
export const PURPOSES = ['model', 'data', 'export'] as const satisfies readonly PathPurpose[];

// Each list must name every member of its type: a member added to the type and not here fails to compile.
type Missing<All, Listed> = Exclude<All, Listed> extends never ? true : Exclude<All, Listed>;
const _complete: [
  Missing<NonNullable<JobSettings['device']>, (typeof DEVICES)[number]>,
  Missing<KeySpaceSetting, (typeof KEY_SPACES)[number]>,
  Missing<Extract<DataSource, { builtin: unknown }>['builtin'], (typeof BUILTIN_TEXTS)[number]>,
  Missing<PathPurpose, (typeof PURPOSES)[number]>,
] = [true, true, true, true];

/** Longest path accepted (Linux's PATH_MAX). */
export const MAX_PATH = 4096;
/** Limits no real request comes near; they keep a hostile one from costing memory or time. */
export const MAX_WINDOW = 1_000_000;
export const MAX_WINDOWS = 1_000_000;
export const MAX_LIST = 100_000;
export const MAX_NEW_TOKENS = 1_000_000;
export const MAX_PROMPT = 1_000_000;
const JOB_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** What the model-dependent checks need of a model (ModelSpec has these fields). */
export interface ModelLimits {
  numLayers: number;
  headDim: number;
  maxPositions: number;
}

// ---------------------------------------------------------------------------------------------------------
// Primitive checks. Each takes the value and where it sits (`settings.window`), and returns it or throws.

type Check<T> = (v: unknown, at: string) => T;

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

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function int(min: number, max: number, what?: string): Check<number> {
  return (v, at) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw fail(at, what ?? `a whole number from ${min} to ${max}`, v);
    }
    return v;
  };
}

/** A finite number in (gt, le] (or [ge, le]). */
function num(range: { gt?: number; ge?: number; le?: number }, what: string): Check<number> {
  return (v, at) => {
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (range.gt === undefined || v > range.gt) &&
      (range.ge === undefined || v >= range.ge) &&
      (range.le === undefined || v <= range.le);
    if (!ok) throw fail(at, what, v);
    return v as number;
  };
}

function oneOf<T extends string>(values: readonly T[]): Check<T> {
  return (v, at) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      throw fail(at, `one of ${values.map((x) => `"${x}"`).join(', ')}`, v);
    }
    return v as T;
  };
}

const bool: Check<boolean> = (v, at) => {
  if (typeof v !== 'boolean') throw fail(at, 'true or false', v);
  return v;
};

/** A path: a non-empty string without NUL, at most MAX_PATH characters. */
export const checkPath: Check<string> = (v, at) => {
  if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_PATH || v.includes('\0')) {
    throw fail(at, `a string (a path of 1 to ${MAX_PATH} characters, no NUL)`, v);
  }
  return v;
};

export const checkJobId: Check<string> = (v, at) => {
  if (typeof v !== 'string' || !JOB_ID.test(v))
    throw fail(at, 'a string: a job id (letters, digits, - and _)', v);
  return v;
};

function list<T>(item: Check<T>, max = MAX_LIST): Check<T[]> {
  return (v, at) => {
    if (!Array.isArray(v)) throw fail(at, 'a list', v);
    if (v.length > max) throw badInput(`${at} may hold at most ${max} entries, got ${v.length}`);
    return v.map((x, i) => item(x, `${at}[${i}]`));
  };
}

type Fields = Record<string, Check<unknown>>;

/**
 * A plain object with these fields: `required` ones present, others optional; an undefined value counts
 * as absent (structured clone keeps them, JSON drops them); any other key is refused, so a misspelt
 * option is an error rather than silently ignored. Returns a fresh object of the fields present.
 */
function record<T>(fields: Fields, required: readonly string[] = [], what = 'an object'): Check<T> {
  return (v, at) => {
    if (!isRecord(v)) throw fail(at, what, v);
    for (const key of Object.keys(v)) {
      if (!Object.hasOwn(fields, key) && v[key] !== undefined) {
        throw badInput(`${at}.${key} is not a field of ${at}; it has ${Object.keys(fields).join(', ')}`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [key, check] of Object.entries(fields)) {
      const x = v[key];
      if (x === undefined) {
        if (required.includes(key)) throw badInput(`${at}.${key} is missing`);
        continue;
      }
      out[key] = check(x, `${at}.${key}`);
    }
    return out as T;
  };
}

// ---------------------------------------------------------------------------------------------------------
// The API's types.

export const checkDataSource: Check<DataSource> = (v, at) => {
  const what = `{path} or {builtin: ${BUILTIN_TEXTS.map((b) => `"${b}"`).join(' | ')}}`;
  if (!isRecord(v)) throw fail(at, what, v);
  if (v.path !== undefined && v.builtin !== undefined) throw badInput(`${at} must be ${what}, not both`);
  if (v.path !== undefined) return record<DataSource>({ path: checkPath }, ['path'], what)(v, at);
  if (v.builtin !== undefined)
    return record<DataSource>({ builtin: oneOf(BUILTIN_TEXTS) }, ['builtin'], what)(v, at);
  throw fail(at, what, v);
};

const rank = int(1, 65_536, 'a whole number ≥ 1 (a rank per KV head)');
const layer = int(0, 1_000_000, 'a whole number ≥ 0 (a layer index)');
const weight = num({ gt: 0 }, 'a finite number > 0');

/** {layer, kRank, vRank} entries, each layer at most once. */
export const checkRankOverrides: Check<RankOverride[]> = (v, at) => {
  const entries = list(
    record<RankOverride>({ layer, kRank: rank, vRank: rank }, ['layer', 'kRank', 'vRank']),
  )(v, at);
  const seen = new Set<number>();
  entries.forEach((o, i) => {
    if (seen.has(o.layer)) throw badInput(`${at}[${i}].layer ${o.layer} is given more than once`);
    seen.add(o.layer);
  });
  return entries;
};

const checkLayerWeights = list(weight);

const SETTINGS_FIELDS: Fields = {
  model: checkPath,
  calib: checkDataSource,
  eval: checkDataSource,
  method: oneOf(METHOD_IDS),
  ranks: record({ k: rank, v: rank }, ['k', 'v']),
  budget: num({ gt: 0 }, 'a positive number (a mean relative layer-output error such as 0.05)'),
  kvFraction: num({ gt: 0, le: 1 }, 'in (0, 1] (the share of the original KV cache to keep)'),
  keySpace: oneOf(KEY_SPACES),
  window: int(2, MAX_WINDOW),
  calibWindows: int(2, MAX_WINDOWS),
  evalWindows: int(1, MAX_WINDOWS),
  seed: int(0, Number.MAX_SAFE_INTEGER, 'a whole number ≥ 0'),
  layerWeights: checkLayerWeights,
  stief: record({
    steps: int(0, 1_000_000),
    lr: num({ gt: 0, le: 100 }, 'a number in (0, 100] (a learning rate)'),
    trainWindows: int(1, MAX_WINDOWS),
  }),
  device: oneOf(DEVICES),
};

/** The shape of a job's settings, and the rules between its fields. */
export function checkJobSettings(v: unknown, at = 'settings'): JobSettings {
  const s = record<JobSettings>(SETTINGS_FIELDS, ['model', 'calib', 'eval', 'method'])(v, at);
  const targets = (['ranks', 'budget', 'kvFraction'] as const).filter((k) => s[k] !== undefined);
  if (targets.length !== 1) {
    throw badInput(
      `give exactly one of ${at}.ranks, ${at}.budget or ${at}.kvFraction` +
        (targets.length ? `; got ${targets.map((k) => `${at}.${k}`).join(' and ')}` : ''),
    );
  }
  if (s.layerWeights !== undefined && s.ranks !== undefined) {
    throw badInput(
      `${at}.layerWeights weigh the layers when ranks are allocated; with ${at}.ranks every layer has the same ranks, so leave them out`,
    );
  }
  if (s.stief !== undefined && s.method !== 'stief' && Object.keys(s.stief).length > 0) {
    throw badInput(
      `${at}.stief sets StiefAttention's training; ${at}.method is "${s.method}", so leave it out`,
    );
  }
  return s;
}

export function checkDataPreviewRequest(v: unknown, at = 'req'): DataPreviewRequest {
  return record<DataPreviewRequest>(
    { model: checkPath, source: checkDataSource, window: int(2, MAX_WINDOW) },
    ['model', 'source', 'window'],
  )(v, at);
}

export function checkReallocateRequest(v: unknown, at = 'req'): ReallocateRequest {
  const r = record<ReallocateRequest>(
    {
      jobId: checkJobId,
      budget: SETTINGS_FIELDS.budget,
      kvFraction: SETTINGS_FIELDS.kvFraction,
      overrides: checkRankOverrides,
      layerWeights: checkLayerWeights,
    },
    ['jobId'],
  )(v, at);
  if (r.budget !== undefined && r.kvFraction !== undefined) {
    throw badInput(`give at most one of ${at}.budget and ${at}.kvFraction`);
  }
  return r;
}

export function checkExportRequest(v: unknown, at = 'req'): ExportRequest {
  return record<ExportRequest>(
    { jobId: checkJobId, out: checkPath, force: bool, onnx: bool, ranks: checkRankOverrides },
    ['jobId', 'out'],
  )(v, at);
}

const checkTryModel: Check<TryModel> = (v, at) => {
  const what = '{dir} or {jobId, ranks?}';
  if (!isRecord(v)) throw fail(at, what, v);
  if (v.dir !== undefined && v.jobId !== undefined) throw badInput(`${at} must be ${what}, not both`);
  if (v.dir !== undefined) return record<TryModel>({ dir: checkPath }, ['dir'], what)(v, at);
  if (v.jobId !== undefined) {
    return record<TryModel>({ jobId: checkJobId, ranks: checkRankOverrides }, ['jobId'], what)(v, at);
  }
  throw fail(at, what, v);
};

/** A Try-it request: a model (and one to compare with), a prompt, and how to sample. */
export function checkTryRequest(v: unknown, at = 'req'): TryRequest {
  if (!isRecord(v)) throw fail(at, 'a Try-it request (an object)', v);
  if (v.prompt !== undefined && typeof v.prompt !== 'string') throw fail(`${at}.prompt`, 'text', v.prompt);
  if (typeof v.prompt === 'string' && v.prompt.trim() === '') {
    throw badInput(`${at}.prompt: the prompt is empty; type a beginning for the model to continue`);
  }
  return record<TryRequest>(
    {
      model: checkTryModel,
      compare: checkTryModel,
      prompt: (p, where) => {
        if ((p as string).length > MAX_PROMPT)
          throw badInput(`${where} is longer than ${MAX_PROMPT} characters`);
        return p;
      },
      maxNewTokens: int(1, MAX_NEW_TOKENS),
      temperature: num({ ge: 0, le: 100 }, 'a number from 0 to 100 (0: greedy)'),
      topK: int(0, Number.MAX_SAFE_INTEGER, 'a whole number ≥ 0 (0: no top-k)'),
      topP: num({ gt: 0, le: 1 }, 'a number in (0, 1] (top-p)'),
      seed: int(0, Number.MAX_SAFE_INTEGER, 'a whole number ≥ 0'),
    },
    ['model', 'prompt'],
  )(v, at);
}

export const checkPurpose: Check<PathPurpose> = oneOf(PURPOSES);

// ---------------------------------------------------------------------------------------------------------
// Whole calls: what the socket and the IPC bridge receive.

interface Signature {
  /** Argument names (for messages) and checks, required first. */
  args: [name: string, check: Check<unknown>][];
  /** How many of the last arguments may be left out. */
  optional: number;
}

const sig = (optional: number, ...args: [string, Check<unknown>][]): Signature => ({ args, optional });

/** Arguments per method. subscribe's listener is a function, which neither face can send: its job id only. */
const SIGNATURES: Record<ApiMethod, Signature> = {
  inspect: sig(0, ['modelDir', checkPath]),
  previewData: sig(0, ['req', checkDataPreviewRequest]),
  estimate: sig(0, ['settings', checkJobSettings]),
  startJob: sig(0, ['settings', checkJobSettings]),
  cancelJob: sig(0, ['id', checkJobId]),
  resumeJob: sig(0, ['id', checkJobId]),
  subscribe: sig(0, ['id', checkJobId]),
  getResult: sig(0, ['id', checkJobId]),
  reallocate: sig(0, ['req', checkReallocateRequest]),
  exportJob: sig(0, ['req', checkExportRequest]),
  getExportReport: sig(0, ['id', checkJobId]),
  listJobs: sig(0),
  startTry: sig(0, ['req', checkTryRequest]),
  getTryResult: sig(0, ['id', checkJobId]),
  choosePath: sig(0, ['purpose', checkPurpose]),
  browse: sig(1, ['dir', checkPath]),
};

/** How many arguments a method takes: at least `min`, at most `max`. */
export function arity(method: ApiMethod): { min: number; max: number } {
  const s = SIGNATURES[method];
  return { min: s.args.length - s.optional, max: s.args.length };
}

/**
 * Checks a whole call's arguments (trailing undefined ones count as left out) and returns them checked:
 * fresh objects holding the known fields only. Throws bad-input naming the argument or field.
 */
export function checkCall(method: ApiMethod, args: readonly unknown[]): unknown[] {
  const { min, max } = arity(method);
  let n = args.length;
  while (n > min && args[n - 1] === undefined) n--;
  if (n < min || n > max) {
    const count = min === max ? String(max) : `${min} or ${max}`;
    throw badInput(`${method} takes ${count} argument${max === 1 ? '' : 's'}, got ${args.length}`);
  }
  return args.slice(0, n).map((a, i) => {
    const [name, check] = SIGNATURES[method].args[i];
    return check(a, name);
  });
}

export type PathAccess = 'read' | 'write';

/** A path-valued field of a checked call, and how to put another path (its real one) in its place. */
export interface PathField {
  path: string;
  access: PathAccess;
  /** Where the field is (`req.source.path`). */
  at: string;
  /** The file whose contents the call sends back (previewData's text): read it through what was checked. */
  content: boolean;
  replace(p: string): void;
}

/**
 * Every path in a call that `checkCall` returned, for a host to vet (and to swap for the path it vetted).
 * `replace` writes into those arguments.
 */
export function pathFields(method: ApiMethod, args: unknown[]): PathField[] {
  const out: PathField[] = [];
  const field = (
    obj: Record<string, unknown>,
    key: string,
    at: string,
    access: PathAccess,
    content = false,
  ) => {
    const p = obj[key];
    if (typeof p === 'string') {
      out.push({ path: p, access, at, content, replace: (q) => (obj[key] = q) });
    }
  };
  const source = (obj: Record<string, unknown>, key: string, at: string, content = false) => {
    const s = obj[key];
    if (isRecord(s)) field(s, 'path', `${at}.path`, 'read', content);
  };
  const arg = args[0] as Record<string, unknown>;
  switch (method) {
    case 'inspect':
    case 'browse':
      if (typeof args[0] === 'string') {
        out.push({
          path: args[0],
          access: 'read',
          at: method === 'inspect' ? 'modelDir' : 'dir',
          content: false,
          replace: (q) => (args[0] = q),
        });
      }
      break;
    case 'previewData':
      field(arg, 'model', 'req.model', 'read');
      source(arg, 'source', 'req.source', true);
      break;
    case 'estimate':
    case 'startJob':
      field(arg, 'model', 'settings.model', 'read');
      source(arg, 'calib', 'settings.calib');
      source(arg, 'eval', 'settings.eval');
      break;
    case 'exportJob':
      field(arg, 'out', 'req.out', 'write');
      break;
    case 'startTry':
      for (const key of ['model', 'compare']) {
        const m = arg[key];
        if (isRecord(m)) field(m, 'dir', `req.${key}.dir`, 'read');
      }
      break;
    case 'cancelJob':
    case 'resumeJob':
    case 'subscribe':
    case 'getResult':
    case 'reallocate':
    case 'getExportReport':
    case 'listJobs':
    case 'getTryResult':
    case 'choosePath':
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Checks against the model, once the engine has its header.

function withinHeadDim(r: number, m: ModelLimits, at: string): void {
  if (r > m.headDim) {
    throw badInput(
      `${at} must be an integer from 1 to the head dimension ${m.headDim} (ranks are per KV head), got ${r}`,
    );
  }
}

export function checkLayerWeightsForModel(
  w: readonly number[] | undefined,
  m: ModelLimits,
  at: string,
): void {
  if (w !== undefined && w.length !== m.numLayers) {
    throw badInput(`${at} must hold ${m.numLayers} weights, one per layer of the model, got ${w.length}`);
  }
}

export function checkRankOverridesForModel(
  overrides: readonly RankOverride[] | undefined,
  m: ModelLimits,
  at: string,
): void {
  overrides?.forEach((o, i) => {
    if (o.layer >= m.numLayers) {
      throw badInput(
        `${at}[${i}].layer must be a layer of the model, 0 to ${m.numLayers - 1} (it has ${m.numLayers}), got ${o.layer}`,
      );
    }
    withinHeadDim(o.kRank, m, `${at}[${i}].kRank`);
    withinHeadDim(o.vRank, m, `${at}[${i}].vRank`);
  });
}

/** What the settings ask of this model: ranks, one weight per layer, a window within its context. */
export function checkJobSettingsForModel(s: JobSettings, m: ModelLimits, at = 'settings'): void {
  if (s.ranks) {
    withinHeadDim(s.ranks.k, m, `${at}.ranks.k`);
    withinHeadDim(s.ranks.v, m, `${at}.ranks.v`);
  }
  checkLayerWeightsForModel(s.layerWeights, m, `${at}.layerWeights`);
  if (s.window !== undefined && s.window > m.maxPositions) {
    throw badInput(
      `${at}.window must be at most the model's context of ${m.maxPositions} tokens, got ${s.window}`,
    );
  }
}

export function checkReallocateForModel(r: ReallocateRequest, m: ModelLimits, at = 'req'): void {
  checkRankOverridesForModel(r.overrides, m, `${at}.overrides`);
  checkLayerWeightsForModel(r.layerWeights, m, `${at}.layerWeights`);
}
