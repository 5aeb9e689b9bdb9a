import path from 'node:path';
import WebSocket from 'ws';

import { createEngineApi } from '../../main/api/engine-api.ts';
import { startServer, type RunningServer } from '../../main/server/server.ts';
import { connectWebSocketApi, type WebSocketApi } from '../../renderer/transport/websocket.ts';
import { webSocketUrl } from '../../renderer/transport/url.ts';

export interface SocketApi {
  engine: ReturnType<typeof createEngineApi>;
  server: RunningServer;
  /** The renderer's own WebSocket client, connected with the server's token. */
  api: WebSocketApi;
  close(): Promise<void>;
}

/** The real engine behind the browser-mode server, and a client of it: the app's whole path in one process. */
export async function serveEngine(dir: string, roots: string[]): Promise<SocketApi> {
  const engine = createEngineApi({ dir: path.join(dir, 'engine') });
  const server = await startServer({ api: engine, roots, staticDir: path.join(dir, 'no-build') });
  const page = new URL(server.url);
  const api = await connectWebSocketApi(
    webSocketUrl({ protocol: page.protocol, host: page.host, search: page.search }),
    WebSocket,
  );
  return {
    engine,
    server,
    api,
    close: async () => {
      api.close();
      await server.close();
      await engine.close();
    },
  };
}
