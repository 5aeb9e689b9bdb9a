/**
 * The one RankwiseApi the page talks to, and how it reaches paths: `desktop` has native dialogs
 * (choosePath), `browser` mode lists the server's folders instead (browse).
 */
import { createContext, useContext, type ReactNode } from 'react';
import type { RankwiseApi } from '../../main/contract/index.ts';

export type HostMode = 'desktop' | 'browser';

interface ApiContextValue {
  api: RankwiseApi;
  mode: HostMode;
}

const ApiContext = createContext<ApiContextValue | null>(null);

export function ApiProvider({
  api,
  mode,
  children,
}: {
  api: RankwiseApi;
  mode: HostMode;
  children: ReactNode;
}) {
  return <ApiContext.Provider value={{ api, mode }}>{children}</ApiContext.Provider>;
}

function useApiContext(): ApiContextValue {
  const value = useContext(ApiContext);
  if (!value) throw new Error('useApi outside <ApiProvider>');
  return value;
}

export function useApi(): RankwiseApi {
  return useApiContext().api;
}

export function useHostMode(): HostMode {
  return useApiContext().mode;
}
