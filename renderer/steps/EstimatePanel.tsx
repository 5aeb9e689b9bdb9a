/** The pre-flight estimate: the memory and time the job should need, and whether this machine has it. */
import Alert from '@mui/material/Alert';
import AlertTitle from '@mui/material/AlertTitle';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import LinearProgress from '@mui/material/LinearProgress';
import Typography from '@mui/material/Typography';
import type { Dispatch } from 'react';
import { useApi } from '../app/api-context.tsx';
import { ErrorAlert } from '../app/ErrorAlert.tsx';
import { formatBytes, formatSeconds } from '../../main/core/format.ts';
import { useKeyedRequest } from '../app/use-keyed-request.ts';
import { settingsKey, settingsOf } from '../state/settings.ts';
import type { WizardAction, WizardState } from '../state/wizard.ts';

export function EstimatePanel({ state, dispatch }: { state: WizardState; dispatch: Dispatch<WizardAction> }) {
  const api = useApi();
  const settings = settingsOf(state);
  const key = settings ? settingsKey(settings) : null;
  const held = state.method.estimate;
  const { busy, error, retry } = useKeyedRequest(
    key,
    held?.key ?? null,
    () => api.estimate(settings!),
    (k, estimate) => dispatch({ type: 'estimateLoaded', key: k, estimate }),
  );
  const estimate = held && held.key === key ? held.value : null;

  return (
    <Box data-testid="estimate" data-fits={estimate ? String(estimate.fits) : undefined} sx={{ mt: 3 }}>
      <Typography variant="h6">Before it runs</Typography>
      {busy && <LinearProgress sx={{ my: 1 }} />}
      {!settings && (
        <Typography color="text.secondary">Complete the fields above to see the estimate.</Typography>
      )}
      {error && (
        <ErrorAlert
          error={error}
          context="method"
          action={
            <Button color="inherit" size="small" onClick={retry}>
              Retry
            </Button>
          }
        />
      )}
      {estimate && !error && (
        <Alert severity={estimate.fits ? 'success' : 'error'} sx={{ mt: 1 }}>
          <AlertTitle>
            {estimate.fits ? 'Fits on this machine' : 'Does not fit: the job would run out of memory'}
          </AlertTitle>
          <Typography variant="body2">
            Needs about <strong>{formatBytes(estimate.memoryBytes)}</strong> of memory;{' '}
            {formatBytes(estimate.availableBytes)} is free. Expected time: about{' '}
            <strong>{formatSeconds(estimate.seconds)}</strong> (rough).
          </Typography>
          <Typography variant="body2" color="text.secondary">
            Weights {formatBytes(estimate.breakdown.weights)} · activations{' '}
            {formatBytes(estimate.breakdown.activations)} · statistics{' '}
            {formatBytes(estimate.breakdown.statistics)} · runtime {formatBytes(estimate.breakdown.runtime)}
          </Typography>
          {!estimate.fits && (
            <Typography variant="body2" sx={{ mt: 1 }}>
              <strong>What to do: </strong>go back to the data step and use fewer calibration windows or a
              shorter window, close other programs, or use a machine with more memory.
            </Typography>
          )}
        </Alert>
      )}
    </Box>
  );
}
