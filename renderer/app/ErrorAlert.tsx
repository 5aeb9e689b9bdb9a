import Alert from '@mui/material/Alert';
import AlertTitle from '@mui/material/AlertTitle';
import Typography from '@mui/material/Typography';
import type { ReactNode } from 'react';
import type { ErrorInfo } from '../../main/contract/index.ts';
import { errorMessage, guidanceFor, type ErrorContext } from './errors.ts';

/** An engine error: what went wrong (the engine's own words), and what to change. */
export function ErrorAlert({
  error,
  context,
  action,
  onClose,
}: {
  error: ErrorInfo;
  context: ErrorContext;
  action?: ReactNode;
  onClose?: () => void;
}) {
  const g = guidanceFor(error, context);
  return (
    <Alert
      severity={error.kind === 'cancelled' ? 'warning' : 'error'}
      data-testid="engine-error"
      data-kind={error.kind}
      action={action}
      onClose={onClose}
      sx={{ my: 2 }}
    >
      <AlertTitle>{g.title}</AlertTitle>
      <Typography variant="body2" sx={{ wordBreak: 'break-word' }}>
        {errorMessage(error)}
      </Typography>
      {error.file && !error.message.includes(error.file) && (
        <Typography variant="body2" sx={{ wordBreak: 'break-all' }}>
          File: <code>{error.file}</code>
        </Typography>
      )}
      <Typography variant="body2" sx={{ mt: 1 }}>
        <strong>What to do: </strong>
        {g.advice}
      </Typography>
      <Typography variant="caption" color="text.secondary">
        Error kind: {error.kind}
      </Typography>
    </Alert>
  );
}
