/** Entry: connect to the engine (desktop bridge or browser-mode WebSocket), then show the wizard. */
import { createRoot } from 'react-dom/client';
import type { BridgeApi } from '../main/contract/index.ts';
import { App } from './app/App.tsx';
import { connectApi } from './app/connect.ts';
import { ConnectionFailed } from './app/ConnectionFailed.tsx';
import { errorInfoOf } from './app/errors.ts';

const root = createRoot(document.getElementById('root')!);

connectApi({
  bridge: (window as { rankwise?: BridgeApi }).rankwise,
  location: window.location,
  history: window.history,
  session: window.sessionStorage,
}).then(
  ({ api, mode }) => root.render(<App api={api} mode={mode} />),
  (e: unknown) => root.render(<ConnectionFailed error={errorInfoOf(e)} />),
);
