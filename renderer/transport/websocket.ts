/**
 * RankwiseApi over the browser-mode WebSocket (main/contract/protocol.ts): each call is a numbered request
 * whose promise settles on the frame with its id; a subscription is a request whose id then labels the
 * event frames that follow. The methods are the manifest's: every request method becomes a request.
 */
import {
  REQUEST_METHODS,
  UNSUBSCRIBE,
  type ClientMessage,
  type ErrorInfo,
  type JobEvent,
  type JobId,
  type RankwiseApi,
  type RequestMethod,
  type ServerMessage,
  type Unsubscribe,
} from '../../main/contract/index.ts';

/** An error the engine (or the transport) reported, with its plain-data form for the UI to phrase. */
export class ApiError extends Error {
  readonly info: ErrorInfo;

  constructor(info: ErrorInfo) {
    super(info.message);
    this.name = 'ApiError';
    this.info = info;
  }

  get kind(): ErrorInfo['kind'] {
    return this.info.kind;
  }
}

/**
 * What this file uses of a WebSocket: the browser's own and the `ws` package's both fit. Methods, not
 * function-valued properties, so either implementation's event types are accepted.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** RankwiseApi plus what a long-lived page needs of its connection. */
export interface WebSocketApi extends RankwiseApi {
  /** Closes the socket; pending calls reject and later calls reject at once. */
  close(): void;
}

/** The WebSocket readyState for an open connection (the same in browsers and `ws`). */
const OPEN = 1;

type Pending = { resolve: (value: unknown) => void; reject: (error: ApiError) => void };

function transportError(message: string): ApiError {
  return new ApiError({ kind: 'internal', message });
}

/**
 * Opens the socket and resolves once it is open. A refused handshake (wrong token, foreign origin) shows
 * in a browser only as a failed connection, so the rejection says what usually causes one.
 */
export function connectWebSocketApi(
  url: string,
  WebSocketImpl: WebSocketConstructor | undefined = (globalThis as { WebSocket?: WebSocketConstructor })
    .WebSocket,
): Promise<WebSocketApi> {
  if (!WebSocketImpl) return Promise.reject(transportError('this environment has no WebSocket'));
  const Impl = WebSocketImpl;
  return new Promise((resolve, reject) => {
    let socket: WebSocketLike;
    try {
      socket = new Impl(url);
    } catch (e) {
      reject(transportError(`cannot open ${url}: ${e instanceof Error ? e.message : String(e)}`));
      return;
    }
    let opened = false;
    let closedWith: ApiError | null = null;
    let nextId = 1;
    const pending = new Map<number, Pending>();
    const listeners = new Map<number, (event: JobEvent) => void>();

    socket.addEventListener('open', () => {
      opened = true;
      resolve(api);
    });
    socket.addEventListener('error', () => {
      if (!opened) {
        reject(
          transportError(
            'could not connect to the Rankwise server (is it still running, and was this page opened ' +
              'with the address it printed, token included?)',
          ),
        );
      }
    });
    socket.addEventListener('close', (event) => {
      closedWith = transportError(
        `the connection to the Rankwise server closed (code ${event.code}${event.reason ? `: ${event.reason}` : ''})`,
      );
      if (!opened) reject(closedWith);
      for (const p of pending.values()) p.reject(closedWith);
      pending.clear();
      listeners.clear();
    });
    socket.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      let message: ServerMessage;
      try {
        message = JSON.parse(event.data) as ServerMessage;
      } catch {
        console.error('rankwise: the server sent a frame that is not JSON');
        return;
      }
      if ('type' in message) {
        const listener = listeners.get(message.subscription);
        if (!listener) return;
        try {
          listener(message.event);
        } catch (e) {
          // One broken view must not stop the events every other subscriber is waiting for.
          console.error('rankwise: a job event listener threw', e);
        }
        return;
      }
      if (message.id === null) {
        if ('error' in message)
          console.error('rankwise: the server could not read a request:', message.error);
        return;
      }
      const p = pending.get(message.id);
      if (!p) return;
      pending.delete(message.id);
      if ('error' in message) p.reject(new ApiError(message.error));
      else p.resolve(message.result);
    });

    const send = (message: ClientMessage): Promise<unknown> => {
      if (closedWith) return Promise.reject(closedWith);
      if (socket.readyState !== OPEN) return Promise.reject(transportError('the connection is not open'));
      return new Promise((res, rej) => {
        pending.set(message.id, { resolve: res, reject: rej });
        try {
          socket.send(JSON.stringify(message));
        } catch (e) {
          pending.delete(message.id);
          rej(
            transportError(`could not send ${message.method}: ${e instanceof Error ? e.message : String(e)}`),
          );
        }
      });
    };

    const request =
      (method: RequestMethod) =>
      (...args: unknown[]): Promise<unknown> => {
        const params: unknown[] = [...args];
        // browse() and browse(undefined) are the same call; JSON would turn the latter into [null].
        while (params.length > 0 && params[params.length - 1] === undefined) params.pop();
        return send({ id: nextId++, method, params });
      };

    const subscribe = (jobId: JobId, listener: (event: JobEvent) => void): Unsubscribe => {
      const id = nextId++;
      listeners.set(id, listener);
      send({ id, method: 'subscribe', params: [jobId] }).catch((e: unknown) => {
        listeners.delete(id);
        // subscribe() has already returned, so a refusal has no caller to reach but the console.
        if (!closedWith) console.error(`rankwise: could not subscribe to job ${jobId}:`, e);
      });
      let done = false;
      return () => {
        if (done) return;
        done = true;
        listeners.delete(id);
        if (!closedWith && socket.readyState === OPEN) {
          send({ id: nextId++, method: UNSUBSCRIBE, params: [id] }).catch(() => {
            // The listener is already gone; a lost unsubscribe only costs the server a few frames.
          });
        }
      };
    };

    const methods: Partial<Record<RequestMethod, unknown>> = {};
    for (const method of REQUEST_METHODS) methods[method] = request(method);
    const api = {
      ...methods,
      subscribe,
      close: () => socket.close(1000, 'closed by the page'),
    } as WebSocketApi;
  });
}
