/**
 * The browser-mode wire protocol: JSON text frames over one WebSocket (ARCHITECTURE.md §1).
 *
 * Client → server: `{id, method, params}` for every RankwiseApi method but subscribe; `{id, method:
 * 'subscribe', params: [jobId]}`, answered `{id, result: null}` and followed by `{type: 'event',
 * subscription: id, event}` frames; `{id, method: 'unsubscribe', params: [subscriptionId]}`.
 * Server → client: `{id, result}` or `{id, error}`; `id` is null when the frame was too broken to have one.
 *
 * The renderer imports the types below; the server runs every frame through `parseClientMessage`.
 */
import { API_METHODS } from '../api/contract.ts';
import type { ApiMethod, JobEvent, JobId, RequestMethod } from '../api/contract.ts';
import { badInput, toErrorInfo } from '../api/errors.ts';
import type { ErrorInfo } from '../api/errors.ts';

/** Where the server answers WebSocket upgrades; the token rides in the query (`/api?token=…`). */
export const API_PATH = '/api';

export interface CallMessage {
  id: number;
  method: RequestMethod;
  params: unknown[];
}

export interface SubscribeMessage {
  id: number;
  method: 'subscribe';
  params: [JobId];
}

export interface UnsubscribeMessage {
  id: number;
  method: 'unsubscribe';
  /** The id of the subscribe message that opened the subscription. */
  params: [number];
}

export type ClientMessage = CallMessage | SubscribeMessage | UnsubscribeMessage;

export interface ResultMessage {
  id: number;
  /** A method that returns nothing answers null (JSON has no undefined). */
  result: unknown;
}

export interface ErrorMessage {
  id: number | null;
  error: ErrorInfo;
}

export interface EventMessage {
  type: 'event';
  subscription: number;
  event: JobEvent;
}

export type ServerMessage = ResultMessage | ErrorMessage | EventMessage;

export type ParsedMessage =
  { ok: true; message: ClientMessage } | { ok: false; id: number | null; error: ErrorInfo };

type ParamType = 'string' | 'object' | 'purpose' | 'subscription';

/**
 * Argument shapes per method: `required` in order, then at most one `optional`. Only the outer shape is
 * checked here; the server checks path-valued fields (paths.ts) and the engine validates the rest.
 */
const PARAMS: Record<ApiMethod | 'unsubscribe', { required: ParamType[]; optional?: ParamType }> = {
  inspect: { required: ['string'] },
  previewData: { required: ['object'] },
  estimate: { required: ['object'] },
  startJob: { required: ['object'] },
  cancelJob: { required: ['string'] },
  resumeJob: { required: ['string'] },
  subscribe: { required: ['string'] },
  getResult: { required: ['string'] },
  reallocate: { required: ['object'] },
  exportJob: { required: ['object'] },
  getExportReport: { required: ['string'] },
  listJobs: { required: [] },
  startTry: { required: ['object'] },
  getTryResult: { required: ['string'] },
  choosePath: { required: ['purpose'] },
  browse: { required: [], optional: 'string' },
  unsubscribe: { required: ['subscription'] },
};

// A Set rather than `in PARAMS`, so "constructor" or "__proto__" are not taken for methods.
const METHODS = new Set<string>([...API_METHODS, 'unsubscribe']);
const PURPOSES = new Set(['model', 'data', 'export']);

const TYPE_NAMES: Record<ParamType, string> = {
  string: 'a string',
  object: 'an object',
  purpose: '"model", "data" or "export"',
  subscription: 'a subscription id (a non-negative integer)',
};

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasType(v: unknown, t: ParamType): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'object':
      return isPlainObject(v);
    case 'purpose':
      return typeof v === 'string' && PURPOSES.has(v);
    case 'subscription':
      return isId(v);
  }
}

/** Checks one text frame's shape; never throws, so a broken frame costs an error reply, not the socket. */
export function parseClientMessage(text: string): ParsedMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return refuse(null, 'a message must be one JSON object; this frame is not JSON');
  }
  if (!isPlainObject(raw)) return refuse(null, 'a message must be a JSON object {id, method, params}');
  const { id, method, params } = raw;
  if (!isId(id)) return refuse(null, 'a message needs an "id": a non-negative integer');
  if (typeof method !== 'string' || !METHODS.has(method)) {
    return refuse(id, `unknown method ${JSON.stringify(method)}; the API has ${[...METHODS].join(', ')}`);
  }
  if (!Array.isArray(params)) return refuse(id, `${method}: "params" must be an array`);
  const spec = PARAMS[method as ApiMethod | 'unsubscribe'];
  // JSON turns a trailing undefined argument into null: an absent optional argument either way.
  const args =
    spec.optional && params.length === spec.required.length + 1 && params.at(-1) === null
      ? params.slice(0, -1)
      : params;
  const max = spec.required.length + (spec.optional ? 1 : 0);
  if (args.length < spec.required.length || args.length > max) {
    const count = spec.optional ? `${spec.required.length} or ${max}` : String(max);
    return refuse(id, `${method} takes ${count} argument${max === 1 ? '' : 's'}, got ${args.length}`);
  }
  const types = [...spec.required, ...(spec.optional ? [spec.optional] : [])];
  for (let i = 0; i < args.length; i++) {
    if (!hasType(args[i], types[i])) {
      return refuse(id, `${method}: argument ${i + 1} must be ${TYPE_NAMES[types[i]]}`);
    }
  }
  return { ok: true, message: { id, method, params: args } as ClientMessage };
}

function refuse(id: number | null, message: string): ParsedMessage {
  return { ok: false, id, error: toErrorInfo(badInput(message)) };
}

/** One server frame as text; a method that returned undefined answers null so the `result` key survives. */
export function encodeServerMessage(message: ServerMessage): string {
  if ('result' in message) return JSON.stringify({ id: message.id, result: message.result ?? null });
  return JSON.stringify(message);
}
