/**
 * The API manifest: the one list of RankwiseApi's methods, each with its argument schema (types, ranges,
 * enums, path roles), its result type and the job events it leads to. Everything else is derived from it:
 * the RankwiseApi type, the engine's argument checks (`withValidation`), the browser-mode server's
 * protocol and dispatch, Electron's IPC channels, handlers and preload, and both renderer transports. A
 * method added here is served by every face, and checked by the same schema on each, without another list
 * to edit.
 *
 * Dependency-free (main/core only), so every face, the preload bundle and the renderer load it as it is.
 */
import { badInput } from '../core/errors.ts';
import { METHOD_IDS, OBJECTIVES } from '../core/kv.ts';
import {
  BUILTIN_TEXTS,
  DEVICES,
  KEY_SPACE_SETTINGS,
  ONNX_DTYPES,
  PATH_PURPOSES,
  STIEF_KEY_SHARINGS,
  STIEF_SCHEDULES,
  type Allocation,
  type DataPreview,
  type DataPreviewRequest,
  type DataSource,
  type DirectoryListing,
  type Envelope,
  type ExportRequest,
  type JobEstimate,
  type JobEvent,
  type JobEventType,
  type JobId,
  type JobSettings,
  type JobSummary,
  type LocalModels,
  type PathPurpose,
  type RankOverride,
  type ReallocateRequest,
  type TryModel,
  type TryRequest,
  type TryRunSummary,
  type Unsubscribe,
} from './api.ts';
import type { ModelCard } from './model.ts';
import type { CompressReport, ReportData } from './report.ts';
import type { TryRunResult } from './try.ts';
import {
  check,
  checkForModel,
  pathsIn,
  s,
  type AnySchema,
  type Infer,
  type ModelLimits,
  type PathField,
  type PathRole,
  type Schema,
} from './schema.ts';

// ---------------------------------------------------------------------------------------------------------
// The arguments' schemas.

/** Limits no real request comes near; they keep a hostile one from costing memory or time. */
export const MAX_WINDOW = 1_000_000;
export const MAX_WINDOWS = 1_000_000;
export const MAX_LIST = 100_000;
export const MAX_NEW_TOKENS = 1_000_000;
export const MAX_PROMPT = 1_000_000;
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

const jobId: Schema<JobId> = s.string({
  maxLength: 128,
  pattern: JOB_ID_PATTERN,
  what: 'a string: a job id (letters, digits, - and _)',
});
const rank = s.int(1, 65_536, { what: 'a whole number ≥ 1 (a rank per KV head)', limit: 'rank' });
const layer = s.int(0, 1_000_000, { what: 'a whole number ≥ 0 (a layer index)', limit: 'layer' });
const seed = s.int(0, Number.MAX_SAFE_INTEGER, { what: 'a whole number ≥ 0' });
const window = s.int(2, MAX_WINDOW, { limit: 'context' });
const budget = s.number({ gt: 0 }, 'a positive number (a mean relative layer-output error such as 0.05)');
const kvFraction = s.number({ gt: 0, le: 1 }, 'in (0, 1] (the share of the original KV cache to keep)');
/** Up to a tenfold perplexity: beyond it a compressed model is no longer the model it was. */
export const MAX_PPL_INCREASE = 9;
const maxPplIncrease = s.number(
  { gt: 0, le: MAX_PPL_INCREASE },
  `in (0, ${MAX_PPL_INCREASE}] (the perplexity increase accepted, a fraction: 0.05 for 5 %)`,
);
const learningRate = s.number({ gt: 0, le: 100 }, 'a number in (0, 100] (a learning rate)');

/** {layer, kRank, vRank} entries, each layer at most once. */
const rankOverrides: Schema<RankOverride[]> = s.list(
  s.object({ layer, kRank: rank, vRank: rank }, { required: ['layer', 'kRank', 'vRank'] }),
  { max: MAX_LIST, uniqueBy: 'layer' },
);
const layerWeights: Schema<number[]> = s.list(s.number({ gt: 0 }, 'a finite number > 0'), {
  max: MAX_LIST,
  perLayer: 'weights',
});

const dataSource = (role: PathRole): Schema<DataSource> =>
  s.oneOf(`{path} or {builtin: ${BUILTIN_TEXTS.map((b) => `"${b}"`).join(' | ')}}`, {
    path: s.object({ path: s.path(role) }, { required: ['path'] }),
    builtin: s.object({ builtin: s.enum(BUILTIN_TEXTS) }, { required: ['builtin'] }),
  });

const jobSettings: Schema<JobSettings> = s.object(
  {
    model: s.path('model-dir'),
    calib: dataSource('text-file'),
    eval: dataSource('text-file'),
    method: s.enum(METHOD_IDS),
    ranks: s.object({ k: rank, v: rank }, { required: ['k', 'v'] }),
    budget,
    kvFraction,
    maxPplIncrease,
    objective: s.enum(OBJECTIVES),
    finetune: s.object(
      {
        steps: s.int(1, 1_000_000, { what: 'a whole number ≥ 1 (optimiser steps per layer)' }),
        lr: learningRate,
      },
      { required: ['steps'] },
    ),
    keySpace: s.enum(KEY_SPACE_SETTINGS),
    window,
    calibWindows: s.int(2, MAX_WINDOWS),
    evalWindows: s.int(1, MAX_WINDOWS),
    heldoutWindows: s.int(1, MAX_WINDOWS),
    profileTokens: s.int(1, 1_000_000),
    calibSampling: s.enum(['first', 'random']),
    allocator: s.enum(['knapsack', 'sweep']),
    seed,
    layerWeights,
    stief: s.object({
      steps: s.int(0, 1_000_000),
      lr: learningRate,
      trainWindows: s.int(1, MAX_WINDOWS),
      keys: s.enum(STIEF_KEY_SHARINGS),
      schedule: s.enum(STIEF_SCHEDULES),
    }),
    device: s.enum(DEVICES),
  },
  {
    required: ['model', 'calib', 'eval', 'method'],
    rules: [
      { rule: 'exactlyOne', of: ['ranks', 'budget', 'kvFraction', 'maxPplIncrease'] },
      {
        rule: 'excludes',
        field: 'objective',
        other: 'ranks',
        message:
          '{at}.objective chooses how ranks are allocated; with {at}.ranks every layer has the same ranks, so leave it out',
      },
      {
        rule: 'excludes',
        field: 'layerWeights',
        other: 'ranks',
        message:
          '{at}.layerWeights weigh the layers when ranks are allocated; with {at}.ranks every layer has ' +
          'the same ranks, so leave them out',
      },
      {
        rule: 'onlyWhen',
        field: 'stief',
        other: 'method',
        equals: 'stief',
        message: `{at}.stief sets StiefAttention's training; {at}.method is "{value}", so leave it out`,
      },
    ],
  },
);

const previewRequest: Schema<DataPreviewRequest> = s.object(
  { model: s.path('model-dir'), source: dataSource('text-sample'), window },
  { required: ['model', 'source', 'window'] },
);

const reallocateRequest: Schema<ReallocateRequest> = s.object(
  { jobId, budget, kvFraction, maxPplIncrease, overrides: rankOverrides, refit: s.boolean(), layerWeights },
  { required: ['jobId'], rules: [{ rule: 'atMostOne', of: ['budget', 'kvFraction', 'maxPplIncrease'] }] },
);

const exportRequest: Schema<ExportRequest> = s.object(
  {
    jobId,
    out: s.path('output-dir'),
    force: s.boolean(),
    onnx: s.boolean(),
    onnxDtype: s.enum(ONNX_DTYPES),
    ranks: rankOverrides,
  },
  { required: ['jobId', 'out'] },
);

const tryModel: Schema<TryModel> = s.oneOf('{dir} or {jobId, ranks?}', {
  dir: s.object({ dir: s.path('model-dir') }, { required: ['dir'] }),
  jobId: s.object({ jobId, ranks: rankOverrides }, { required: ['jobId'] }),
});

const tryRequest: Schema<TryRequest> = s.object(
  {
    model: tryModel,
    compare: tryModel,
    prompt: s.string({
      maxLength: MAX_PROMPT,
      blank: '{at}: the prompt is empty; type a beginning for the model to continue',
    }),
    maxNewTokens: s.int(1, MAX_NEW_TOKENS),
    temperature: s.number({ ge: 0, le: 100 }, 'a number from 0 to 100 (0: greedy)'),
    topK: s.int(0, Number.MAX_SAFE_INTEGER, { what: 'a whole number ≥ 0 (0: no top-k)' }),
    topP: s.number({ gt: 0, le: 1 }, 'a number in (0, 1] (top-p)'),
    seed,
  },
  { required: ['model', 'prompt'], what: 'a Try-it request (an object)' },
);

const purpose: Schema<PathPurpose> = s.enum(PATH_PURPOSES);

/** The named schemas, for checks of a part of a call (the engine's model checks, the CLI's flags). */
export const SCHEMAS = {
  jobId,
  jobSettings,
  previewRequest,
  reallocateRequest,
  exportRequest,
  rankOverrides,
  layerWeights,
  tryModel,
  tryRequest,
  purpose,
};

// ---------------------------------------------------------------------------------------------------------
// The methods.

export interface ArgSpec<S extends AnySchema = AnySchema, Optional extends boolean = boolean> {
  name: string;
  schema: S;
  /** May be left out (only trailing arguments). */
  optional: Optional;
}

/** A result type, by name (for people) and type (for the compiler). */
export interface ResultSpec<T> {
  name: string;
  readonly __result?: T;
}

export interface MethodSpec<
  A extends readonly ArgSpec[] = readonly ArgSpec[],
  R = unknown,
  D extends 'call' | 'subscribe' = 'call' | 'subscribe',
  H extends boolean = boolean,
> {
  doc: string;
  args: A;
  result: ResultSpec<R>;
  /** `call`: one request, one answer. `subscribe`: a listener that receives events until unsubscribed. */
  delivery: D;
  /**
   * The job events the call leads to: those of the job it starts or changes (sent to its subscribers),
   * or, for subscribe, those it delivers.
   */
  events: readonly JobEventType[];
  /**
   * Answered by each host itself (a native dialog on the desktop, a listing confined to the server's
   * folders in browser mode); the engine's own answer is the fallback.
   */
  host: H;
}

const arg = <S extends AnySchema>(name: string, schema: S): ArgSpec<S, false> => ({
  name,
  schema,
  optional: false,
});
const optionalArg = <S extends AnySchema>(name: string, schema: S): ArgSpec<S, true> => ({
  name,
  schema,
  optional: true,
});
const returns = <T>(name: string): ResultSpec<T> => ({ name });

function method<
  const A extends readonly ArgSpec[],
  R,
  const D extends 'call' | 'subscribe' = 'call',
  const H extends boolean = false,
>(spec: {
  doc: string;
  args: A;
  result: ResultSpec<R>;
  delivery?: D;
  events?: readonly JobEventType[];
  host?: H;
}): MethodSpec<A, R, D, H> {
  return {
    doc: spec.doc,
    args: spec.args,
    result: spec.result,
    delivery: (spec.delivery ?? 'call') as D,
    events: spec.events ?? [],
    host: (spec.host ?? false) as H,
  };
}

const COMPRESS_EVENTS: readonly JobEventType[] = ['state', 'progress', 'profile', 'log'];
const EXPORT_EVENTS: readonly JobEventType[] = ['state', 'progress', 'log'];
const TRY_EVENTS: readonly JobEventType[] = ['state', 'token', 'log'];

export const MANIFEST = {
  inspect: method({
    doc: 'The architecture card of a model folder.',
    args: [arg('modelDir', s.path('model-dir'))],
    result: returns<ModelCard>('ModelCard'),
  }),
  previewData: method({
    doc: 'What a calibration or evaluation text holds, in windows of the model’s tokens.',
    args: [arg('req', previewRequest)],
    result: returns<DataPreview>('DataPreview'),
  }),
  estimate: method({
    doc: 'Pre-flight figures of a job: memory, time, and whether this machine has them.',
    args: [arg('settings', jobSettings)],
    result: returns<JobEstimate>('JobEstimate'),
  }),
  startJob: method({
    doc: 'Starts a compress job.',
    args: [arg('settings', jobSettings)],
    result: returns<JobSummary>('JobSummary'),
    events: COMPRESS_EVENTS,
  }),
  cancelJob: method({
    doc: 'Cancels a queued or running job (or Try-it run).',
    args: [arg('id', jobId)],
    result: returns<void>('void'),
    events: ['state'],
  }),
  resumeJob: method({
    doc: 'Starts a cancelled or failed job again; layers it finished come from the job cache.',
    args: [arg('id', jobId)],
    result: returns<JobSummary>('JobSummary'),
    events: COMPRESS_EVENTS,
  }),
  subscribe: method({
    doc: 'Events of a job from now on (and the job’s current state at once).',
    args: [arg('id', jobId)],
    result: returns<Unsubscribe>('Unsubscribe'),
    delivery: 'subscribe',
    events: ['state', 'progress', 'profile', 'log', 'token'],
  }),
  getResult: method({
    doc: 'The report of a finished compress job.',
    args: [arg('id', jobId)],
    result: returns<CompressReport>('CompressReport'),
  }),
  reallocate: method({
    doc: 'Re-allocates a finished job’s profiles to a new budget or memory target, and/or fixed layers.',
    args: [arg('req', reallocateRequest)],
    result: returns<Allocation>('Allocation'),
  }),
  exportJob: method({
    doc: 'Starts an export job of a finished compress job; its result is the report.',
    args: [arg('req', exportRequest)],
    result: returns<JobSummary>('JobSummary'),
    events: EXPORT_EVENTS,
  }),
  getExportReport: method({
    doc: 'The report of a finished export job (what it wrote as rankwise-report.json).',
    args: [arg('id', jobId)],
    result: returns<ReportData>('ReportData'),
  }),
  listJobs: method({
    doc: 'Every compress and export job kept on disk (Try-it runs are not listed).',
    args: [],
    result: returns<JobSummary[]>('JobSummary[]'),
  }),
  listModels: method({
    doc: 'Model folders on this machine: the Hugging Face cache’s snapshots and the folders recent jobs used.',
    args: [],
    result: returns<LocalModels>('LocalModels'),
  }),
  startTry: method({
    doc: 'Starts a Try-it run (a job of kind `try`): `token` events stream, cancelJob stops it.',
    args: [arg('req', tryRequest)],
    result: returns<TryRunSummary>('TryRunSummary'),
    events: TRY_EVENTS,
  }),
  getTryResult: method({
    doc: 'What a finished Try-it run generated, and how the two models compare.',
    args: [arg('id', jobId)],
    result: returns<TryRunResult>('TryRunResult'),
  }),
  choosePath: method({
    doc: 'Desktop: a native dialog for a path of this purpose; browser mode: null (the page browses instead).',
    args: [arg('purpose', purpose)],
    result: returns<string | null>('string | null'),
    host: true,
  }),
  browse: method({
    doc: 'A folder listing (browser mode: inside the server’s folders; desktop: inside the folders picked).',
    args: [optionalArg('dir', s.path('listing-dir'))],
    result: returns<DirectoryListing>('DirectoryListing'),
    host: true,
  }),
} as const;

export type Manifest = typeof MANIFEST;
export type ApiMethod = keyof Manifest;

/** The methods that are one request and one answer (every one but subscribe). */
export type RequestMethod = {
  [K in ApiMethod]: Manifest[K]['delivery'] extends 'call' ? K : never;
}[ApiMethod];

/** The arguments of a method, as a tuple: trailing optional ones optional. */
type ArgTypes<A extends readonly unknown[]> = A extends readonly [infer H, ...infer Rest]
  ? H extends ArgSpec<infer S, true>
    ? [Infer<S>?, ...ArgTypes<Rest>]
    : H extends ArgSpec<infer S, false>
      ? [Infer<S>, ...ArgTypes<Rest>]
      : never
  : [];

/** The methods each host answers itself (choosePath, browse). */
export type HostMethod = { [K in ApiMethod]: Manifest[K]['host'] extends true ? K : never }[ApiMethod];

export type ArgsOf<M extends ApiMethod> = ArgTypes<Manifest[M]['args']>;
export type ResultOf<M extends ApiMethod> = Manifest[M]['result'] extends ResultSpec<infer R> ? R : never;

type Requests = { [M in RequestMethod]: (...args: ArgsOf<M>) => Promise<ResultOf<M>> };

/**
 * The one contract between the engine and its faces (ARCHITECTURE.md §1): the Electron preload exposes it
 * as `window.rankwise`, the browser-mode server speaks it over a WebSocket, and the engine implements it
 * in-process. Each method is the manifest's (MANIFEST above says what each does).
 */
export interface RankwiseApi extends Requests {
  /** Events from now on (and the job's current state at once). */
  subscribe(id: ArgsOf<'subscribe'>[0], listener: (event: JobEvent) => void): ResultOf<'subscribe'>;
}

/**
 * `window.rankwise` on the desktop: RankwiseApi with every request answering an Envelope instead of
 * throwing, so the error kind survives contextBridge; renderer/transport/ipc.ts turns it back into a
 * RankwiseApi.
 */
export type BridgeApi = {
  [M in RequestMethod]: (...args: ArgsOf<M>) => Promise<Envelope<ResultOf<M>>>;
} & { subscribe: RankwiseApi['subscribe'] };

/** Every method, in the manifest's order. */
export const API_METHODS = Object.keys(MANIFEST) as ApiMethod[];
/** Every request/response method (all but subscribe). */
export const REQUEST_METHODS = API_METHODS.filter((m): m is RequestMethod => MANIFEST[m].delivery === 'call');
/** The methods each host answers itself (choosePath, browse). */
export const HOST_METHODS = API_METHODS.filter((m): m is HostMethod => MANIFEST[m].host);

/** What a host answers its own methods with: one function per host method, as the compiler demands. */
export type HostAnswers = { [M in HostMethod]: (...args: ArgsOf<M>) => Promise<ResultOf<M>> };

/** True for a method of the API (and not for "constructor", "__proto__" or other inherited names). */
export function isApiMethod(name: unknown): name is ApiMethod {
  return typeof name === 'string' && Object.hasOwn(MANIFEST, name);
}

// ---------------------------------------------------------------------------------------------------------
// Whole calls: what every face checks before anything else.

/** How many arguments a method takes: at least `min`, at most `max`. */
export function arity(method: ApiMethod): { min: number; max: number } {
  const args: readonly ArgSpec[] = MANIFEST[method].args;
  return { min: args.filter((a) => !a.optional).length, max: args.length };
}

/**
 * Checks a whole call's arguments against the manifest (trailing undefined ones count as left out) and
 * returns them checked: fresh objects holding the known fields only. Throws bad-input naming the argument
 * or field. For subscribe, the job id only (its listener is a function, which no face can send).
 */
export function checkCall(method: ApiMethod, args: readonly unknown[]): unknown[] {
  const { min, max } = arity(method);
  let n = args.length;
  while (n > min && args[n - 1] === undefined) n--;
  if (n < min || n > max) {
    const count = min === max ? String(max) : `${min} or ${max}`;
    throw badInput(`${method} takes ${count} argument${max === 1 ? '' : 's'}, got ${args.length}`);
  }
  const specs: readonly ArgSpec[] = MANIFEST[method].args;
  return args.slice(0, n).map((a, i) => check(specs[i].schema, a, specs[i].name));
}

/**
 * Every path in a call `checkCall` returned, with its role, for a host to vet; `replace` puts another
 * path (the real one the host vetted) in its place, in those arguments.
 */
export function pathFields(method: ApiMethod, args: unknown[]): PathField[] {
  const specs: readonly ArgSpec[] = MANIFEST[method].args;
  return specs.flatMap((spec, i) => pathsIn(spec.schema, args[i], spec.name, (p) => (args[i] = p)));
}

/**
 * The engine's entry: `impl` behind the manifest's checks, so every call of every face (and in-process
 * callers: the CLI, tests) meets the same schema before the engine does anything. The checked copies are
 * what `impl` receives.
 */
export function withValidation<A extends RankwiseApi>(impl: A): A {
  const api = Object.create(impl) as A;
  for (const name of REQUEST_METHODS) {
    const call = impl[name] as (...args: unknown[]) => Promise<unknown>;
    (api as Record<string, unknown>)[name] = async (...args: unknown[]) =>
      call.apply(impl, checkCall(name, args));
  }
  api.subscribe = (id, listener) => {
    const [checked] = checkCall('subscribe', [id]) as [JobId];
    if (typeof listener !== 'function') throw badInput('subscribe needs a listener function');
    return impl.subscribe(checked, listener);
  };
  return api;
}

// ---------------------------------------------------------------------------------------------------------
// Parts of calls, for the engine's checks against the model and for the CLI's flags.

export function checkJobSettings(v: unknown, at = 'settings'): JobSettings {
  return check(jobSettings, v, at);
}

/** What settings ask of this model: ranks within the head dimension, one weight per layer, a window within the context. */
export function checkJobSettingsForModel(settings: JobSettings, m: ModelLimits, at = 'settings'): void {
  checkForModel(jobSettings, settings, m, at);
}

/** Overrides within the model: layers it has, ranks within its head dimension. */
export function checkRankOverridesForModel(
  overrides: readonly RankOverride[] | undefined,
  m: ModelLimits,
  at: string,
): void {
  checkForModel(rankOverrides, overrides, m, at);
}

export function checkReallocateForModel(req: ReallocateRequest, m: ModelLimits, at = 'req'): void {
  checkForModel(reallocateRequest, req, m, at);
}

export function checkTryModelForModel(model: TryModel, m: ModelLimits, at: string): void {
  checkForModel(tryModel, model, m, at);
}
