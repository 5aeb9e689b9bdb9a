/**
 * The sandboxed preload: exposes `window.rankwise`, an object with exactly the manifest's methods, and
 * nothing else (no ipcRenderer, no generic send). It is bundled into one file because a sandboxed preload
 * can require only 'electron'; from main/ it takes the manifest (main/contract, dependency-free) alone.
 */
import { contextBridge, ipcRenderer } from 'electron';
import type { IpcRendererEvent } from 'electron';
import type { BridgeApi, JobEvent, JobId, RequestMethod, Unsubscribe } from '../main/contract/index.ts';
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

function isEnvelope(value: unknown): value is IpcEnvelope<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { ok?: unknown }).ok === 'boolean';
}

/**
 * One request as an envelope, never a throw: contextBridge rebuilds a thrown Error from its message alone,
 * which would lose the error's kind; renderer/transport/ipc.ts unwraps the envelope on the page side.
 */
async function request(
  ipc: IpcRendererLike,
  channel: string,
  args: unknown[],
): Promise<IpcEnvelope<unknown>> {
  let reply: unknown;
  try {
    reply = await ipc.invoke(channel, ...args);
  } catch (e) {
    // main refused the message outright (an untrusted sender) or has no handler for it
    return { ok: false, error: { kind: 'internal', message: e instanceof Error ? e.message : String(e) } };
  }
  if (!isEnvelope(reply))
    return { ok: false, error: { kind: 'internal', message: `${channel}: malformed reply` } };
  return reply;
}

/** Builds the object that becomes `window.rankwise`. */
export function createBridgeApi(ipc: IpcRendererLike): BridgeApi {
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
    void request(ipc, SUBSCRIBE_CHANNEL, [id, subscriptionId]).then((reply) => {
      if (reply.ok) return;
      listeners.delete(subscriptionId);
      // the contract's subscribe has no way to fail later; the console is where this can be seen
      console.error(`rankwise: subscribing to job ${id} failed: ${reply.error.message}`);
    });
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      listeners.delete(subscriptionId);
      // main forgets a page's subscriptions when the page goes anyway, so a failure needs no handling
      void request(ipc, UNSUBSCRIBE_CHANNEL, [subscriptionId]);
    };
  };

  const api: Partial<Record<RequestMethod | 'subscribe', unknown>> = { subscribe };
  for (const method of REQUEST_METHODS) {
    const channel = channelOf(method);
    api[method] = (...args: unknown[]) => request(ipc, channel, args);
  }
  return api as BridgeApi;
}

contextBridge.exposeInMainWorld('rankwise', createBridgeApi(ipcRenderer));
