/**
 * The browser-mode wire protocol: JSON text frames over one WebSocket (ARCHITECTURE.md §1).
 *
 * Client → server: `{id, method, params}` for every RankwiseApi method but subscribe; `{id, method:
 * 'subscribe', params: [jobId]}`, answered `{id, result: null}` and followed by `{type: 'event',
 * subscription: id, event}` frames; `{id, method: 'unsubscribe', params: [subscriptionId]}`.
 * Server → client: `{id, result}` or `{id, error}`; `id` is null when the frame was too broken to have one.
 *
 * The renderer imports the types below; the server runs every frame through `parseClientMessage`, which
 * checks the frame and then the call's arguments against the API's one schema (main/api/validate.ts).
 */
import { API_METHODS } from '../api/contract.ts';
import type { ApiMethod, JobEvent, JobId, RequestMethod } from '../api/contract.ts';
import { badInput, toErrorInfo } from '../core/errors.ts';
import type { ErrorInfo } from '../core/errors.ts';
import { arity, checkCall } from '../api/validate.ts';

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

// A Set rather than `in` an object, so "constructor" or "__proto__" are not taken for methods.
const METHODS = new Set<string>([...API_METHODS, 'unsubscribe']);

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
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
  if (method === 'unsubscribe') {
    if (params.length !== 1) return refuse(id, `unsubscribe takes 1 argument, got ${params.length}`);
    if (!isId(params[0])) {
      return refuse(id, 'unsubscribe: argument 1 must be a subscription id (a non-negative integer)');
    }
    return { ok: true, message: { id, method, params: [params[0]] } };
  }
  // JSON turns a trailing undefined argument into null: an absent optional argument either way.
  const { min, max } = arity(method as ApiMethod);
  const args = max > min && params.length === max && params.at(-1) === null ? params.slice(0, -1) : params;
  try {
    // the API's one schema (validate.ts): the engine runs it again, but a malformed call stops here,
    // before any path in it is looked at
    const checked = checkCall(method as ApiMethod, args);
    return { ok: true, message: { id, method, params: checked } as ClientMessage };
  } catch (e) {
    return { ok: false, id, error: toErrorInfo(e) };
  }
}

function refuse(id: number | null, message: string): ParsedMessage {
  return { ok: false, id, error: toErrorInfo(badInput(message)) };
}

/** One server frame as text; a method that returned undefined answers null so the `result` key survives. */
export function encodeServerMessage(message: ServerMessage): string {
  if ('result' in message) return JSON.stringify({ id: message.id, result: message.result ?? null });
  return JSON.stringify(message);
}
