/** Raw-protocol and HTTP helpers for the browser-mode server tests: real sockets on loopback. */
import http from 'node:http';
import WebSocket from 'ws';
import type { ErrorInfo, JobEvent } from '../../main/contract/index.ts';

export interface Frame {
  id?: number | null;
  result?: unknown;
  error?: ErrorInfo;
  type?: 'event';
  subscription?: number;
  event?: JobEvent;
}

/** A protocol client that keeps every frame it receives, so tests can wait for them and check their order. */
export class TestClient {
  readonly frames: Frame[] = [];
  private readonly taken = new Set<Frame>();
  private waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  private nextId = 1;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => {
        if (this.taken.has(frame) || !w.pred(frame)) return true;
        this.taken.add(frame);
        w.resolve(frame);
        return false;
      });
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  static open(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const client = new TestClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  /** The first frame not yet taken that matches `pred`, now or when it arrives. */
  waitFor(pred: (f: Frame) => boolean, timeoutMs = 3000): Promise<Frame> {
    const found = this.frames.find((f) => !this.taken.has(f) && pred(f));
    if (found) {
      this.taken.add(found);
      return Promise.resolve(found);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no matching frame arrived')), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  }

  send(data: string | Buffer): void {
    this.ws.send(data);
  }

  /** Sends `{id, method, params}` and resolves with the frame that answers it. */
  async request(method: string, params: unknown[] = []): Promise<Frame & { id: number }> {
    const id = this.nextId++;
    this.send(JSON.stringify({ id, method, params }));
    return (await this.waitFor((f) => f.id === id && f.type === undefined)) as Frame & { id: number };
  }

  /** The events received so far for one subscription, in arrival order. */
  events(subscription: number): JobEvent[] {
    return this.frames
      .filter((f) => f.type === 'event' && f.subscription === subscription)
      .map((f) => f.event!);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}

/** The HTTP status the server answers a WebSocket handshake with (101 when it accepts it). */
export function handshakeStatus(url: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('upgrade', (res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => ws.close());
    ws.once('error', (e) => reject(e));
  });
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A GET with the path sent exactly as given (fetch would normalise `..` away before sending). */
export function httpGet(
  port: number,
  rawPath: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
