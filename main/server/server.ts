/**
 * Browser mode (ARCHITECTURE.md §1–§2): one HTTP server on 127.0.0.1 that serves the built renderer and
 * speaks RankwiseApi over a WebSocket at /api. What keeps other people and other web pages out:
 *  - the loopback address only, so nothing off this machine connects at all;
 *  - a random token in the page URL, required (in constant time) for the WebSocket;
 *  - the Origin of the WebSocket handshake, so another site open in the same browser cannot use the API
 *    even if it learnt the port;
 *  - the Host header, so a DNS name rebound to 127.0.0.1 does not make this server same-origin with an
 *    attacker's page;
 *  - the PathGuard, so the token grants the folders the user named and no others.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import {
  MANIFEST,
  UNSUBSCRIBE,
  type HostAnswers,
  type HostMethod,
  type JobEvent,
  type JobId,
  type RankwiseApi,
  type RequestMethod,
  type Unsubscribe,
} from '../contract/index.ts';
import { badInput, RankwiseError, toErrorInfo } from '../core/errors.ts';
import { BUNDLED_MODEL_DIR } from '../api/local-models.ts';
import { PathGuard, vetPaths, visibleModels, type PinnedFile } from './paths.ts';
import { API_PATH, encodeServerMessage, parseClientMessage } from './protocol.ts';
import type { ServerMessage } from './protocol.ts';
import { CONTENT_TYPES } from './content-types.ts';

/** The only address the server binds: browser mode is for the person at this machine. */
export const HOST = '127.0.0.1';

/** Requests are small JSON documents; a larger frame is a mistake or an attack, and ws closes on it. */
const MAX_FRAME_BYTES = 1 << 20;

/** How long a closing client may take to answer the close handshake before its socket is cut. */
const CLOSE_GRACE_MS = 1000;

export interface ServerOptions {
  /** The engine; every method but choosePath and browse is forwarded to it after its paths are checked. */
  api: RankwiseApi;
  /** 0 (the default) lets the system pick a free port. */
  port?: number;
  /** Folders the API may read and write in; everything else is refused. */
  roots: readonly string[];
  /** The built renderer (index.html and its assets). */
  staticDir: string;
  /** Defaults to 32 random bytes, base64url. */
  token?: string;
  /** Problems nobody can be answered about (a send that failed, a broken engine event). */
  log?: (message: string) => void;
}

export interface RunningServer {
  /** The address to open, token included. */
  url: string;
  port: number;
  token: string;
  /** The real paths of the roots. */
  roots: readonly string[];
  /** The bound socket address (always 127.0.0.1). */
  address(): AddressInfo;
  /** Closes every WebSocket (their subscriptions end) and the HTTP server. */
  close(): Promise<void>;
}

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Rankwise</title></head>
<body>
<h1>Rankwise</h1>
<p>The server is running, but the renderer (this wizard's page) is not built yet.</p>
<p><code>rankwise serve</code> builds it as it starts, in a clone with its dev dependencies installed
(<code>npm ci</code>); the terminal it runs in says why it could not. To build it yourself, run
<code>npm run build</code> in the repository, then reload this page.</p>
</body>
</html>
`;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Equal-length digests, so neither the content nor the length of the token leaks through timing. */
function tokenMatches(given: string, token: string): boolean {
  return timingSafeEqual(sha256(given), sha256(token));
}

/** Answers an upgrade request with a plain HTTP refusal; the socket never becomes a WebSocket. */
function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const body = `${reason}\n`;
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { api, staticDir } = options;
  const log = options.log ?? (() => {});
  // the bundled model may be read whatever the roots: it is the wizard's default
  const guard = await PathGuard.create(options.roots, [BUNDLED_MODEL_DIR]);
  const token = options.token ?? randomBytes(32).toString('base64url');
  if (token.length === 0) throw badInput('the token may not be empty');

  let port = 0;
  // Browsers leave the default port out of Host and Origin.
  const hostsFor = (p: number) => [HOST, 'localhost'].map((h) => (p === 80 ? h : `${h}:${p}`));
  const hostOk = (host: string | undefined) =>
    host !== undefined && hostsFor(port).includes(host.toLowerCase());
  const originOk = (origin: string) => hostsFor(port).some((h) => origin === `http://${h}`);

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
  wss.on('connection', (ws: WebSocket) => serveConnection(ws, api, guard, log));

  const server = http.createServer((req, res) => {
    const host = req.headers.host;
    if (!hostOk(host)) {
      plain(res, 403, `this server answers only to ${HOST}:${port} and localhost:${port}`);
      return;
    }
    serveStatic(req, res, staticDir, host!.toLowerCase()).catch((e) => {
      log(`static ${req.url}: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) plain(res, 500, 'internal error');
      else res.destroy();
    });
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // A peer that resets mid-handshake must not become an unhandled 'error' event.
    socket.on('error', () => {});
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://${HOST}`);
    } catch {
      refuseUpgrade(socket, 400, 'bad request target');
      return;
    }
    if (url.pathname !== API_PATH) return refuseUpgrade(socket, 404, `the API is at ${API_PATH}`);
    if (!hostOk(req.headers.host)) return refuseUpgrade(socket, 403, 'foreign Host header');
    const origin = req.headers.origin;
    // Browsers always send Origin on a WebSocket handshake; tools without one still need the token.
    if (origin !== undefined && !originOk(origin)) return refuseUpgrade(socket, 403, 'foreign Origin');
    const given = url.searchParams.get('token');
    if (given === null || !tokenMatches(given, token))
      return refuseUpgrade(socket, 401, 'missing or wrong token');
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => {
      const code = 'code' in e ? e.code : undefined;
      reject(
        code === 'EADDRINUSE'
          ? badInput(`port ${options.port} is already in use on ${HOST}`)
          : code === 'EACCES'
            ? badInput(`port ${options.port} may not be used by this user`)
            : e,
      );
    };
    server.once('error', onError);
    server.listen(options.port ?? 0, HOST, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (e) => log(`server: ${e.message}`));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new RankwiseError('internal', 'no TCP address');
  port = address.port;

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      for (const ws of wss.clients) {
        ws.close(1001, 'the server is shutting down');
        setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
      }
      wss.close();
      server.close(() => {
        guard.close().then(resolve, (e: unknown) => {
          log(`pins: ${e instanceof Error ? e.message : String(e)}`);
          resolve();
        });
      });
      server.closeIdleConnections();
    });
    return closing;
  };

  return {
    url: `http://${HOST}:${port}/?token=${encodeURIComponent(token)}`,
    port,
    token,
    roots: guard.roots,
    address: () => server.address() as AddressInfo,
    close,
  };
}

function securityHeaders(host: string): Record<string, string> {
  return {
    'Content-Security-Policy':
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
      `connect-src 'self' ws://${host}; frame-ancestors 'none'; object-src 'none'; base-uri 'none'`,
    'X-Content-Type-Options': 'nosniff',
    // The page URL carries the token: never hand it to another site as a Referer.
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  };
}

function plain(res: http.ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}

async function serveStatic(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  staticDir: string,
  host: string,
): Promise<void> {
  const headers = securityHeaders(host);
  const send = (status: number, type: string, body: Buffer | string) => {
    res.writeHead(status, { ...headers, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(405, 'text/plain; charset=utf-8', 'only GET and HEAD\n');
  }
  const rawPath = (req.url ?? '/').split('?')[0];
  if (rawPath === API_PATH) return send(426, 'text/plain; charset=utf-8', 'the API speaks WebSocket\n');
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return send(400, 'text/plain; charset=utf-8', 'bad path\n');
  }
  // Refuse rather than normalise: a request naming `..` (raw or encoded) or a backslash is never the renderer's.
  const segments = decoded.split('/');
  if (!decoded.startsWith('/') || /[\\\0]/.test(decoded) || segments.some((s) => s === '..' || s === '.')) {
    return send(400, 'text/plain; charset=utf-8', 'bad path\n');
  }
  const rel = decoded === '/' ? 'index.html' : decoded.slice(1);
  const root = await fs.realpath(staticDir).catch(() => null);
  const file = root === null ? null : await fs.realpath(path.join(root, rel)).catch(() => null);
  // A symlink inside the build must not lead out of it either.
  const inside =
    root !== null && file !== null && file.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
  const stat = inside ? await fs.stat(file).catch(() => null) : null;
  if (!stat?.isFile()) {
    if (rel === 'index.html') return send(200, CONTENT_TYPES['.html'], NOT_BUILT_PAGE);
    return send(404, 'text/plain; charset=utf-8', 'not found\n');
  }
  const type = CONTENT_TYPES[path.extname(file!).toLowerCase()] ?? 'application/octet-stream';
  return send(200, type, await fs.readFile(file!));
}

/**
 * An answer (or error) of a call that read pinned files, naming each file by its real path rather than
 * by the link it was lent under.
 */
function unpinned<T>(value: T, pins: readonly PinnedFile[]): T {
  const swap = (text: string) => pins.reduce((t, pin) => t.split(pin.path).join(pin.real), text);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return swap(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v instanceof RankwiseError) {
      const file = v.file === undefined ? undefined : swap(v.file);
      const message =
        v.file !== undefined && v.message.startsWith(`${v.file}: `)
          ? v.message.slice(v.file.length + 2)
          : v.message;
      return new RankwiseError(v.kind, swap(message), file, v.setting);
    }
    if (v instanceof Error) return new Error(swap(v.message));
    if (typeof v === 'object' && v !== null) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(value) as T;
}

/**
 * What browser mode answers itself, for the manifest's host methods: no native dialog in a browser tab
 * (the renderer browses with `browse` instead), and listings inside the roots only.
 */
function hostAnswers(guard: PathGuard): HostAnswers {
  return {
    choosePath: async () => null,
    browse: (dir) => guard.browse(dir),
  };
}

/** One WebSocket: its requests, and the subscriptions it opened, which all end when it closes. */
function serveConnection(
  ws: WebSocket,
  api: RankwiseApi,
  guard: PathGuard,
  log: (message: string) => void,
): void {
  const subscriptions = new Map<number, Unsubscribe>();
  const host = hostAnswers(guard);

  const send = (message: ServerMessage) => {
    if (ws.readyState !== ws.OPEN) return;
    let text: string;
    try {
      text = encodeServerMessage(message);
    } catch (e) {
      // A result JSON cannot carry (a BigInt, a cycle) is the engine's bug; say so to the caller.
      if ('type' in message) return log(`event not sent: ${e instanceof Error ? e.message : String(e)}`);
      text = encodeServerMessage({
        id: message.id,
        error: {
          kind: 'internal',
          message: `the result could not be sent: ${e instanceof Error ? e.message : e}`,
        },
      });
    }
    ws.send(text, (err) => {
      if (err) log(`send failed: ${err.message}`);
    });
  };

  const answer = (id: number, work: () => Promise<unknown>) => {
    Promise.resolve()
      .then(work)
      .then(
        (result) => send({ id, result }),
        (e) => send({ id, error: toErrorInfo(e) }),
      )
      .catch((e) => log(`answer ${id}: ${e instanceof Error ? e.message : String(e)}`));
  };

  // The engine gets the paths the guard vetted, never the caller's strings (paths.ts, vetPaths).
  const call = async (method: RequestMethod, params: unknown[]) => {
    const vetted = await vetPaths(guard, method, params);
    if (method === 'listModels') return visibleModels(guard, await api.listModels());
    const fn = api[method] as (...args: unknown[]) => Promise<unknown>;
    if (vetted.pins.length === 0) return fn.apply(api, vetted.params);
    try {
      return unpinned(await fn.apply(api, vetted.params), vetted.pins);
    } catch (e) {
      throw unpinned(e, vetted.pins);
    } finally {
      await Promise.all(vetted.pins.map((p) => p.release()));
    }
  };

  // Synchronous on purpose: an unsubscribe that follows a subscribe must find it registered.
  const subscribe = (id: number, jobId: JobId) => {
    if (subscriptions.has(id))
      return send({ id, error: toErrorInfo(badInput(`subscription ${id} is already open`)) });
    let acknowledged = false;
    let active = true;
    const early: JobEvent[] = [];
    const listener = (event: JobEvent) => {
      try {
        if (!active) return;
        // The engine sends the current state during subscribe(): hold it until the client has its ack.
        if (!acknowledged) early.push(event);
        else send({ type: 'event', subscription: id, event });
      } catch (e) {
        log(`event for subscription ${id}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    let unsubscribe: Unsubscribe;
    try {
      unsubscribe = api.subscribe(jobId, listener);
    } catch (e) {
      return send({ id, error: toErrorInfo(e) });
    }
    subscriptions.set(id, () => {
      active = false;
      unsubscribe();
    });
    send({ id, result: null });
    acknowledged = true;
    for (const event of early.splice(0)) listener(event);
  };

  const end = (subscription: number) => {
    const unsubscribe = subscriptions.get(subscription);
    subscriptions.delete(subscription);
    try {
      unsubscribe?.();
    } catch (e) {
      log(`unsubscribe ${subscription}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
    try {
      if (isBinary) {
        return send({ id: null, error: toErrorInfo(badInput('binary frames are not part of the protocol')) });
      }
      const parsed = parseClientMessage(data.toString());
      if (!parsed.ok) return send({ id: parsed.id, error: parsed.error });
      const m = parsed.message;
      if (m.method === UNSUBSCRIBE) {
        // Unknown ids answer null too: the client may unsubscribe after a subscribe the server refused.
        end(m.params[0]);
        return send({ id: m.id, result: null });
      }
      // the manifest says how each method is served: a subscription, the host's own answer, or the engine
      const spec = MANIFEST[m.method];
      if (spec.delivery === 'subscribe') return subscribe(m.id, m.params[0] as JobId);
      if (spec.host) {
        const own = host[m.method as HostMethod] as (...args: unknown[]) => Promise<unknown>;
        return answer(m.id, () => own(...m.params));
      }
      return answer(m.id, () => call(m.method as RequestMethod, m.params));
    } catch (e) {
      log(`message: ${e instanceof Error ? e.message : String(e)}`);
    }
  });

  ws.on('close', () => {
    for (const subscription of [...subscriptions.keys()]) end(subscription);
  });
  ws.on('error', (e) => log(`websocket: ${e.message}`));
}
