/**
 * RankwiseApi over Electron's bridge (`window.rankwise`). contextBridge keeps only the message of an
 * Error thrown across it, so the preload answers every request with an Envelope; this file turns an
 * `{ok: false}` envelope back into a thrown ApiError whose kind the UI can phrase.
 */
import {
  REQUEST_METHODS,
  type BridgeApi,
  type Envelope,
  type ErrorInfo,
  type RankwiseApi,
  type RequestMethod,
} from '../../main/contract/index.ts';
import { ApiError } from './websocket.ts';

function isEnvelope(value: unknown): value is Envelope<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { ok?: unknown }).ok === 'boolean';
}

/** What a rejection from the bridge itself (not the engine) still tells us. */
function rejectionInfo(e: unknown): ErrorInfo {
  const info = (e as { info?: ErrorInfo } | null)?.info;
  if (info && typeof info.kind === 'string' && typeof info.message === 'string') return info;
  return { kind: 'internal', message: e instanceof Error ? e.message : String(e) };
}

function unwrap(bridge: BridgeApi, method: RequestMethod) {
  return async (...args: unknown[]): Promise<unknown> => {
    const call = bridge[method] as (...a: unknown[]) => Promise<unknown>;
    let reply: unknown;
    try {
      reply = await call(...args);
    } catch (e) {
      throw new ApiError(rejectionInfo(e));
    }
    if (!isEnvelope(reply)) throw new ApiError({ kind: 'internal', message: `${method}: malformed reply` });
    if (!reply.ok) throw new ApiError(reply.error);
    return reply.value;
  };
}

export function ipcApi(bridge: BridgeApi): RankwiseApi {
  const api: Partial<Record<keyof RankwiseApi, unknown>> = {
    // Events are plain data both sides; the bridge already delivers them to the listener.
    subscribe: (id: string, listener: Parameters<RankwiseApi['subscribe']>[1]) =>
      bridge.subscribe(id, listener),
  };
  // every request method of the manifest
  for (const method of REQUEST_METHODS) api[method] = unwrap(bridge, method);
  return api as RankwiseApi;
}
