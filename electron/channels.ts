/**
 * What the preload and the main process agree on: the channel of each of the manifest's request methods,
 * the event channels and the reply envelope. The preload bundles this file, so its run-time imports stay
 * within main/contract and main/core (no Node: a sandboxed preload can load nothing but `electron`).
 */
import { REQUEST_METHODS, type Envelope, type RequestMethod } from '../main/contract/index.ts';

export const CHANNEL_PREFIX = 'rankwise:';

/** Main → renderer: `(subscriptionId, jobEvent)`. */
export const EVENT_CHANNEL = 'rankwise:event';
/** Renderer → main: `(jobId, subscriptionId)`; the renderer names the subscription (see preload.ts). */
export const SUBSCRIBE_CHANNEL = 'rankwise:subscribe';
/** Renderer → main: `(subscriptionId)`. */
export const UNSUBSCRIBE_CHANNEL = 'rankwise:unsubscribe';

/** Every request/response method of the manifest, each on its own channel. */
export { REQUEST_METHODS };

export function channelOf(method: RequestMethod): string {
  return `${CHANNEL_PREFIX}${method}`;
}

/**
 * A handler's reply. Electron passes only the message of an error thrown in a handler, so failures travel
 * as data and the preload turns them back into errors.
 */
export type IpcEnvelope<T> = Envelope<T>;

/** Subscription ids are chosen by the preload; main accepts only these. */
export const SUBSCRIPTION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
