/**
 * Follows a job for as long as the wizard holds it, whichever step is on screen: its events go into the
 * wizard state, and once it is done its result is fetched.
 */
import { useEffect, type Dispatch } from 'react';
import { useApi } from './api-context.tsx';
import { errorInfoOf } from './errors.ts';
import type { JobSlot, WizardAction } from '../state/wizard.ts';

export function useFollowJob(slot: JobSlot, jobId: string | null, dispatch: Dispatch<WizardAction>): void {
  const api = useApi();
  useEffect(() => {
    if (jobId === null) return;
    let live = true;
    const fetchResult = async () => {
      try {
        if (slot === 'export') {
          const report = await api.getExportReport(jobId);
          if (live) dispatch({ type: 'exportResult', jobId, report });
        } else {
          const result = await api.getResult(jobId);
          if (live) dispatch({ type: 'jobResult', slot, jobId, result });
        }
      } catch (e) {
        if (live) dispatch({ type: 'jobError', slot, jobId, error: errorInfoOf(e) });
      }
    };
    const unsubscribe = api.subscribe(jobId, (event) => {
      if (!live) return;
      dispatch({ type: 'jobEvent', slot, event });
      if (event.type === 'state' && event.state === 'done') void fetchResult();
    });
    return () => {
      live = false;
      unsubscribe();
    };
  }, [api, slot, jobId, dispatch]);
}
