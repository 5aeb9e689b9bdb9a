/**
 * Keeps one engine answer in step with the request it depends on: when `key` (the request, serialised)
 * differs from the key of the answer held (`have`), asks again after a short pause, so typing does not
 * send a request per keystroke; answers to superseded requests are dropped.
 */
import { useEffect, useRef, useState } from 'react';
import type { ErrorInfo } from '../../main/contract/index.ts';
import { errorInfoOf } from './errors.ts';

export const REQUEST_DELAY_MS = 300;

export function useKeyedRequest<T>(
  key: string | null,
  have: string | null,
  fetch: () => Promise<T>,
  onAnswer: (key: string, value: T) => void,
  /** Told of a failed request too, so state that waits for the answer can stop waiting. */
  onError?: (key: string, error: ErrorInfo) => void,
) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [attempt, setAttempt] = useState(0);
  // the latest closures, so the effect depends on the key alone
  const latest = useRef({ fetch, onAnswer, onError });
  useEffect(() => {
    latest.current = { fetch, onAnswer, onError };
  });

  useEffect(() => {
    setError(null);
    if (key === null || key === have) return;
    let current = true;
    const timer = setTimeout(() => {
      setBusy(true);
      latest.current
        .fetch()
        .then(
          (value) => {
            if (current) latest.current.onAnswer(key, value);
          },
          (e: unknown) => {
            if (!current) return;
            const info = errorInfoOf(e);
            setError(info);
            latest.current.onError?.(key, info);
          },
        )
        .finally(() => {
          if (current) setBusy(false);
        });
    }, REQUEST_DELAY_MS);
    return () => {
      current = false;
      clearTimeout(timer);
      setBusy(false);
    };
  }, [key, have, attempt]);

  return { busy, error, retry: () => setAttempt((n) => n + 1) };
}
