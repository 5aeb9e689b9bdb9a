/**
 * What the preload and the main process agree on: channel names and the reply envelope. The preload
 * bundles this file, so it must stay free of run-time imports (a sandboxed preload can load nothing but
 * `electron`).
 */
import type { ErrorInfo, RequestMethod } from '../main/api/contract.ts';

export const CHANNEL_PREFIX = 'rankwise:';

/** Main → renderer: `(subscriptionId, jobEvent)`. */
export const EVENT_CHANNEL = 'rankwise:event';
/** Renderer → main: `(jobId, subscriptionId)`; the renderer names the subscription (see preload.ts). */
export const SUBSCRIBE_CHANNEL = 'rankwise:subscribe';
/** Renderer → main: `(subscriptionId)`. */
export const UNSUBSCRIBE_CHANNEL = 'rankwise:unsubscribe';

/**
 * Every request/response method, as an object so the compiler rejects a missing or an extra key whenever
 * the contract changes; API_METHODS itself lives in main/, which the preload may import types from only.
 */
const REQUEST_METHOD_SET: Record<RequestMethod, true> = {
  inspect: true,
  previewData: true,
  estimate: true,
  startJob: true,
  cancelJob: true,
  resumeJob: true,
  getResult: true,
  reallocate: true,
  exportJob: true,
  getExportReport: true,
  listJobs: true,
  startTry: true,
  getTryResult: true,
  choosePath: true,
  browse: true,
};

export const REQUEST_METHODS = Object.keys(REQUEST_METHOD_SET) as RequestMethod[];

export function channelOf(method: RequestMethod): string {
  return `${CHANNEL_PREFIX}${method}`;
}

/**
 * A handler's reply. Electron passes only the message of an error thrown in a handler, so failures travel
 * as data and the preload turns them back into errors.
 */
export type IpcEnvelope<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };

/** Subscription ids are chosen by the preload; main accepts only these. */
export const SUBSCRIPTION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
