/**
 * The sandboxed preload: exposes `window.rankwise`, an object with exactly the RankwiseApi methods, and
 * nothing else (no ipcRenderer, no generic send). It is bundled into one file because a sandboxed preload
 * can require only 'electron'; from main/ it takes types alone.
 */
import { contextBridge, ipcRenderer } from 'electron';
import type { IpcRendererEvent } from 'electron';
import type {
  ErrorInfo,
  JobEvent,
  JobId,
  RankwiseApi,
  RequestMethod,
  Unsubscribe,
} from '../main/api/contract.ts';
import {
  EVENT_CHANNEL,
  REQUEST_METHODS,
  SUBSCRIBE_CHANNEL,
  UNSUBSCRIBE_CHANNEL,
  channelOf,
  type IpcEnvelope,
} from './channels.ts';

/** The parts of `ipcRenderer` the bridge uses. */
export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: IpcRendererEvent, ...args: unknown[]) => void): unknown;
}

/** An engine error as the renderer receives it: the message, and the ErrorInfo it came from. */
export type BridgeError = Error & { info: ErrorInfo };

export function bridgeError(info: ErrorInfo): BridgeError {
  const error = new Error(info.message) as BridgeError;
  error.name = 'RankwiseError';
  error.info = info;
  return error;
}

function isEnvelope(value: unknown): value is IpcEnvelope<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { ok?: unknown }).ok === 'boolean';
}

async function request(ipc: IpcRendererLike, channel: string, args: unknown[]): Promise<unknown> {
  let reply: unknown;
  try {
    reply = await ipc.invoke(channel, ...args);
  } catch (e) {
    // main refused the message outright (an untrusted sender) or has no handler for it
    throw bridgeError({ kind: 'internal', message: e instanceof Error ? e.message : String(e) });
  }
  if (!isEnvelope(reply)) throw bridgeError({ kind: 'internal', message: `${channel}: malformed reply` });
  if (!reply.ok) throw bridgeError(reply.error);
  return reply.value;
}

/** Builds the object that becomes `window.rankwise`. */
export function createBridgeApi(ipc: IpcRendererLike): RankwiseApi {
  const listeners = new Map<string, (event: JobEvent) => void>();
  let dispatching = false;
  // ids are chosen here, before main can send anything, so no event (the job's current state, sent at
  // once) can arrive for an id the page does not know yet
  const idPrefix = Math.random().toString(36).slice(2, 10) || 'p';
  let nextId = 0;

  const ensureDispatcher = (): void => {
    if (dispatching) return;
    dispatching = true;
    ipc.on(EVENT_CHANNEL, (_event, subscriptionId, jobEvent) => {
      if (typeof subscriptionId === 'string') listeners.get(subscriptionId)?.(jobEvent as JobEvent);
    });
  };

  const subscribe = (id: JobId, listener: (event: JobEvent) => void): Unsubscribe => {
    if (typeof listener !== 'function') throw new TypeError('subscribe: listener must be a function');
    ensureDispatcher();
    const subscriptionId = `${idPrefix}-${++nextId}`;
    listeners.set(subscriptionId, listener);
    request(ipc, SUBSCRIBE_CHANNEL, [id, subscriptionId]).catch((e: unknown) => {
      listeners.delete(subscriptionId);
      // the contract's subscribe has no way to fail later; the console is where this can be seen
      console.error(`rankwise: subscribing to job ${id} failed:`, e);
    });
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      listeners.delete(subscriptionId);
      request(ipc, UNSUBSCRIBE_CHANNEL, [subscriptionId]).catch(() => {
        // main forgets a page's subscriptions when the page goes anyway
      });
    };
  };

  const api: Partial<Record<RequestMethod | 'subscribe', unknown>> = { subscribe };
  for (const method of REQUEST_METHODS) {
    const channel = channelOf(method);
    api[method] = (...args: unknown[]) => request(ipc, channel, args);
  }
  return api as RankwiseApi;
}

contextBridge.exposeInMainWorld('rankwise', createBridgeApi(ipcRenderer));
