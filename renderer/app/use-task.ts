/** One asynchronous action of a view: whether it is under way, and the engine error it ended with. */
import { useCallback, useState } from 'react';
import type { ErrorInfo } from '../../main/contract/index.ts';
import { errorInfoOf } from './errors.ts';

export interface Task {
  busy: boolean;
  error: ErrorInfo | null;
  /** Runs `work`; resolves to its value, or to undefined when it threw (the error is then shown). */
  run<T>(work: () => Promise<T>): Promise<T | undefined>;
  clear(): void;
}

export function useTask(): Task {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const run = useCallback(async <T>(work: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await work();
    } catch (e) {
      setError(errorInfoOf(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  const clear = useCallback(() => setError(null), []);
  return { busy, error, run, clear };
}
