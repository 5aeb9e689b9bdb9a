/** The shell: theme (light/dark, remembered), the API context, the app bar and the wizard. */
import AppBar from '@mui/material/AppBar';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Container from '@mui/material/Container';
import CssBaseline from '@mui/material/CssBaseline';
import GlobalStyles from '@mui/material/GlobalStyles';
import IconButton from '@mui/material/IconButton';
import Toolbar from '@mui/material/Toolbar';
import Tooltip from '@mui/material/Tooltip';
import Typography from '@mui/material/Typography';
import useMediaQuery from '@mui/material/useMediaQuery';
import { ThemeProvider } from '@mui/material/styles';
import { useMemo, useState } from 'react';
import type { RankwiseApi } from '../../main/contract/index.ts';
import type { WizardState } from '../state/wizard.ts';
import { ApiProvider, type HostMode } from './api-context.tsx';
import { makeTheme, storedThemeMode, storeThemeMode, type ThemeMode } from './theme.ts';
import { Wizard } from './Wizard.tsx';

function storage(): Storage | undefined {
  try {
    return globalThis.localStorage;
  } catch {
    return undefined;
  }
}

export function App({ api, mode, initial }: { api: RankwiseApi; mode: HostMode; initial?: WizardState }) {
  const prefersDark = useMediaQuery('(prefers-color-scheme: dark)');
  const [chosen, setChosen] = useState<ThemeMode | null>(() => storedThemeMode(storage()));
  const themeMode: ThemeMode = chosen ?? (prefersDark ? 'dark' : 'light');
  const theme = useMemo(() => makeTheme(themeMode), [themeMode]);
  const [recentOpen, setRecentOpen] = useState(false);

  const toggleTheme = () => {
    const next = themeMode === 'dark' ? 'light' : 'dark';
    setChosen(next);
    storeThemeMode(storage(), next);
  };

  return (
    <ThemeProvider theme={theme}>
      <CssBaseline />
      <GlobalStyles
        styles={{
          // SVG groups draw no focus outline of their own: the ring rect shows keyboard focus instead
          '.rw-layer:focus-visible .rw-focus-ring': {
            stroke: theme.palette.primary.main,
            strokeWidth: 2,
          },
          '.rw-point:focus-visible': { outline: 'none', strokeWidth: 4 },
        }}
      />
      <ApiProvider api={api} mode={mode}>
        <AppBar
          position="static"
          color="default"
          elevation={0}
          sx={{ borderBottom: 1, borderColor: 'divider' }}
        >
          <Toolbar>
            <Typography variant="h6" component="h1" sx={{ flexGrow: 1 }}>
              Rankwise
              <Typography component="span" variant="body2" color="text.secondary" sx={{ ml: 1 }}>
                smaller KV caches, measured
              </Typography>
            </Typography>
            <Button onClick={() => setRecentOpen(true)} data-testid="recent-jobs">
              Recent jobs
            </Button>
            <Tooltip title={`Switch to ${themeMode === 'dark' ? 'light' : 'dark'} theme`}>
              <IconButton
                onClick={toggleTheme}
                aria-label={`Switch to ${themeMode === 'dark' ? 'light' : 'dark'} theme`}
                data-testid="theme-toggle"
                data-mode={themeMode}
              >
                <span aria-hidden="true">{themeMode === 'dark' ? '☀' : '☾'}</span>
              </IconButton>
            </Tooltip>
          </Toolbar>
        </AppBar>
        <Container maxWidth="lg" sx={{ py: 3 }}>
          <Box component="main">
            <Wizard initial={initial} recentOpen={recentOpen} onRecentClose={() => setRecentOpen(false)} />
          </Box>
        </Container>
      </ApiProvider>
    </ThemeProvider>
  );
}
