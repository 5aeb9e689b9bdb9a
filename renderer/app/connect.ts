/**
 * Which transport the page uses: Electron's preload puts `window.rankwise` on the page; without it this
 * is browser mode, whose server handed out the page address with a token. The token then leaves the
 * address bar (history, screenshots, a copied link) but stays in this tab's session storage, so a reload
 * still connects.
 */
import type { BridgeApi, RankwiseApi } from '../../main/contract/index.ts';
import { ipcApi } from '../transport/ipc.ts';
import { webSocketUrl, type PageLocation } from '../transport/url.ts';
import { connectWebSocketApi } from '../transport/websocket.ts';
import type { HostMode } from './api-context.tsx';

const TOKEN_KEY = 'rankwise.token';

export interface PageEnvironment {
  bridge: BridgeApi | undefined;
  location: PageLocation & { pathname: string; hash: string };
  history: Pick<History, 'replaceState'>;
  session: Pick<Storage, 'getItem' | 'setItem'> | undefined;
  connect?: (url: string) => Promise<RankwiseApi>;
}

/** The page's address with the token from its query or, after a reload, from the session. */
export function tokenLocation(env: PageEnvironment): PageLocation {
  const query = new URLSearchParams(env.location.search);
  let token = query.get('token');
  if (!token) {
    try {
      token = env.session?.getItem(TOKEN_KEY) ?? null;
    } catch {
      token = null;
    }
  }
  const search = token ? `?token=${encodeURIComponent(token)}` : '';
  return { protocol: env.location.protocol, host: env.location.host, search };
}

/** Removes `token` from the address bar, keeping the path, other parameters and the hash. */
export function stripToken(env: PageEnvironment): void {
  const query = new URLSearchParams(env.location.search);
  const token = query.get('token');
  if (token === null) return;
  try {
    env.session?.setItem(TOKEN_KEY, token);
  } catch {
    // without session storage a reload needs the printed address again; nothing else changes
  }
  query.delete('token');
  const rest = query.toString();
  env.history.replaceState(null, '', `${env.location.pathname}${rest ? `?${rest}` : ''}${env.location.hash}`);
}

export async function connectApi(env: PageEnvironment): Promise<{ api: RankwiseApi; mode: HostMode }> {
  if (env.bridge) return { api: ipcApi(env.bridge), mode: 'desktop' };
  const url = webSocketUrl(tokenLocation(env));
  const api = await (env.connect ?? connectWebSocketApi)(url);
  stripToken(env);
  return { api, mode: 'browser' };
}
