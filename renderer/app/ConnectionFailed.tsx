/** Shown instead of the wizard when the page could not reach the engine at all. */
import Button from '@mui/material/Button';
import Container from '@mui/material/Container';
import CssBaseline from '@mui/material/CssBaseline';
import { ThemeProvider } from '@mui/material/styles';
import type { ErrorInfo } from '../../main/contract/index.ts';
import { ErrorAlert } from './ErrorAlert.tsx';
import { makeTheme } from './theme.ts';

export function ConnectionFailed({ error }: { error: ErrorInfo }) {
  return (
    <ThemeProvider theme={makeTheme('light')}>
      <CssBaseline />
      <Container maxWidth="sm" sx={{ py: 6 }}>
        <ErrorAlert
          error={error}
          context="connect"
          action={
            <Button color="inherit" onClick={() => window.location.reload()}>
              Reload
            </Button>
          }
        />
      </Container>
    </ThemeProvider>
  );
}
