import type { JobEvent, JobId, RankwiseApi } from '../../main/contract/index.ts';

const FINAL = new Set(['done', 'failed', 'cancelled']);

/** Every event of a job (or a Try-it run) until it settles; `onEvent` sees each as it comes. */
export function settle(
  api: Pick<RankwiseApi, 'subscribe'>,
  id: JobId,
  onEvent?: (e: JobEvent) => void,
): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  return new Promise((resolve) => {
    const stop = api.subscribe(id, (e) => {
      events.push(e);
      onEvent?.(e);
      if (e.type === 'state' && FINAL.has(e.state)) {
        stop();
        resolve(events);
      }
    });
  });
}

/** The state a job settled in. */
export async function settledState(api: Pick<RankwiseApi, 'subscribe'>, id: JobId): Promise<string> {
  const last = (await settle(api, id)).at(-1) as Extract<JobEvent, { type: 'state' }>;
  return last.state;
}
