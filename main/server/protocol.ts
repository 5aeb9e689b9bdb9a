/**
 * The browser-mode wire protocol, server side: frames (main/contract/protocol.ts) in, parsed and checked
 * against the manifest; answers out. Every method of the manifest is accepted with the arguments its
 * schema allows (`checkCall`), plus the protocol's own `unsubscribe`; nothing else.
 */
import {
  API_METHODS,
  UNSUBSCRIBE,
  arity,
  checkCall,
  isApiMethod,
  type ClientMessage,
  type ServerMessage,
} from '../contract/index.ts';
import { badInput, toErrorInfo } from '../core/errors.ts';
import type { ErrorInfo } from '../core/errors.ts';

export { API_PATH } from '../contract/index.ts';
export type {
  CallMessage,
  ClientMessage,
  ErrorMessage,
  EventMessage,
  ResultMessage,
  ServerMessage,
  SubscribeMessage,
  UnsubscribeMessage,
} from '../contract/index.ts';

export type ParsedMessage =
  { ok: true; message: ClientMessage } | { ok: false; id: number | null; error: ErrorInfo };

/** What a frame may name: the manifest's methods and the protocol's unsubscribe. */
const METHOD_NAMES = [...API_METHODS, UNSUBSCRIBE];

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
  if (method !== UNSUBSCRIBE && !isApiMethod(method)) {
    return refuse(id, `unknown method ${JSON.stringify(method)}; the API has ${METHOD_NAMES.join(', ')}`);
  }
  if (!Array.isArray(params)) return refuse(id, `${method}: "params" must be an array`);
  if (method === UNSUBSCRIBE) {
    if (params.length !== 1) return refuse(id, `unsubscribe takes 1 argument, got ${params.length}`);
    if (!isId(params[0])) {
      return refuse(id, 'unsubscribe: argument 1 must be a subscription id (a non-negative integer)');
    }
    return { ok: true, message: { id, method, params: [params[0]] } };
  }
  // JSON turns a trailing undefined argument into null: an absent optional argument either way.
  const { min, max } = arity(method);
  const args = max > min && params.length === max && params.at(-1) === null ? params.slice(0, -1) : params;
  try {
    // the manifest's schema: the engine runs it again, but a malformed call stops here, before any path
    // in it is looked at
    const checked = checkCall(method, args);
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
