/**
 * The browser-mode wire protocol: JSON text frames over one WebSocket (ARCHITECTURE.md §1). The server
 * (main/server/protocol.ts) parses and answers these frames; the page's transport
 * (renderer/transport/websocket.ts) sends them. The methods and their arguments are the manifest's.
 *
 * Client → server: `{id, method, params}` for every request method; `{id, method: 'subscribe', params:
 * [jobId]}`, answered `{id, result: null}` and followed by `{type: 'event', subscription: id, event}`
 * frames; `{id, method: 'unsubscribe', params: [subscriptionId]}`.
 * Server → client: `{id, result}` or `{id, error}`; `id` is null when the frame was too broken to have one.
 */
import type { ErrorInfo } from '../core/errors.ts';
import type { JobEvent, JobId } from './api.ts';
import type { RequestMethod } from './manifest.ts';

/** Where the server answers WebSocket upgrades; the token rides in the query (`/api?token=…`). */
export const API_PATH = '/api';

/** The protocol's own method beside the API's: ends a subscription. */
export const UNSUBSCRIBE = 'unsubscribe';

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
  method: typeof UNSUBSCRIBE;
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
