import Alert from '@mui/material/Alert';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Stack from '@mui/material/Stack';
import Tooltip from '@mui/material/Tooltip';
import Typography from '@mui/material/Typography';
import { useMemo } from 'react';
import type { JobSettings } from '../../main/contract/index.ts';
import { useApi } from '../app/api-context.tsx';
import { ErrorAlert } from '../app/ErrorAlert.tsx';
import { formatSeconds } from '../../main/core/format.ts';
import { baseName } from '../app/paths.ts';
import { useTask } from '../app/use-task.ts';
import { ProfileChart } from '../charts/ProfileChart.tsx';
import { profileSeries } from '../charts/profile-data.ts';
import { methodInfo } from '../state/methods.ts';
import { isActive, layersProfiled, type RunView } from '../state/run.ts';
import { runMatches, settingsKey, settingsOf, stepValid } from '../state/settings.ts';
import { JobProgress } from './JobProgress.tsx';
import type { StepProps } from './step-props.ts';

function describeSource(s: JobSettings['calib']): string {
  return 'builtin' in s ? 'the built-in demo text' : baseName(s.path);
}

function SettingsSummary({ settings }: { settings: JobSettings }) {
  const target =
    settings.kvFraction !== undefined
      ? `keep ${Math.round(settings.kvFraction * 1000) / 10} % of the cache`
      : `error budget ${settings.budget}`;
  return (
    <Typography variant="body2" color="text.secondary">
      {methodInfo(settings.method).name} on {baseName(settings.model)}, {target}; calibrating on{' '}
      {settings.calibWindows} windows of {settings.window} tokens of {describeSource(settings.calib)},
      evaluating on {settings.evalWindows} windows of {describeSource(settings.eval)}.
    </Typography>
  );
}

/** One cell per layer: measured, taken from the job cache, being worked on, or still to come. */
function LayerStrip({ view, layers }: { view: RunView; layers: number }) {
  const current = view.progress && view.progress.layer >= 0 ? view.progress.layer : -1;
  const done = layersProfiled(view);
  return (
    <Box data-testid="layer-progress" data-done={done} sx={{ my: 1 }}>
      <Typography variant="body2">
        Layers measured: {done} of {layers}
      </Typography>
      <Stack direction="row" sx={{ flexWrap: 'wrap', gap: '3px', mt: 0.5 }} role="list">
        {Array.from({ length: layers }, (_, i) => {
          const p = view.profiles[i];
          const status = p
            ? p.cached
              ? 'from cache'
              : 'measured'
            : i === current
              ? 'in progress'
              : 'waiting';
          return (
            <Tooltip key={i} title={`Layer ${i}: ${status}`}>
              <Box
                role="listitem"
                aria-label={`Layer ${i}: ${status}`}
                sx={{
                  width: 14,
                  height: 14,
                  borderRadius: 0.5,
                  border: 1,
                  borderColor: i === current ? 'primary.main' : 'divider',
                  bgcolor: p ? (p.cached ? 'primary.light' : 'primary.main') : 'transparent',
                }}
              />
            </Tooltip>
          );
        })}
      </Stack>
    </Box>
  );
}

export function RunStep({ state, dispatch }: StepProps) {
  const api = useApi();
  const task = useTask();
  const card = state.model.card;
  const settings = settingsOf(state);
  const run = state.run;
  const matches = runMatches(state);
  const view = run?.view;
  const active = view ? isActive(view.state) : false;
  const series = useMemo(
    () => (view && card ? profileSeries(view.profiles, card.headDim) : []),
    [view, card],
  );

  const start = async () => {
    if (!settings) return;
    const summary = await task.run(() => api.startJob(settings));
    if (summary) {
      dispatch({
        type: 'jobStarted',
        slot: 'run',
        summary,
        settingsKey: settingsKey(settings),
        method: settings.method,
      });
    }
  };
  const cancel = () => run && void task.run(() => api.cancelJob(run.jobId));
  const resume = async () => {
    if (!run) return;
    const summary = await task.run(() => api.resumeJob(run.jobId));
    if (!summary) return;
    if (summary.id !== run.jobId) {
      dispatch({
        type: 'jobStarted',
        slot: 'run',
        summary,
        settingsKey: run.settingsKey,
        method: run.method,
      });
    } else {
      // the engine's own state event follows; showing 'queued' now keeps the buttons honest meanwhile
      dispatch({
        type: 'jobEvent',
        slot: 'run',
        event: { type: 'state', jobId: run.jobId, seq: -1, state: summary.state },
      });
    }
  };

  const canStart =
    settings !== null && stepValid(state, 'method') && !(matches && (active || view?.state === 'done'));
  const resumable = matches && (view?.state === 'cancelled' || view?.state === 'failed');
  const seconds = run?.result ? Object.values(run.result.seconds).reduce((a, b) => a + b, 0) : null;

  return (
    <Box data-testid="step-run">
      {settings && <SettingsSummary settings={settings} />}
      {run && !matches && (
        <Alert severity="info" sx={{ mt: 2 }}>
          The settings changed since the last run: start a new run to see their result.
        </Alert>
      )}
      <Stack direction="row" spacing={1} sx={{ mt: 2 }}>
        <Button
          variant="contained"
          data-testid="start"
          disabled={!canStart || task.busy}
          onClick={() => void start()}
        >
          {run ? 'Start a new run' : 'Start'}
        </Button>
        {matches && active && (
          <Button
            variant="outlined"
            color="warning"
            data-testid="cancel"
            disabled={task.busy}
            onClick={cancel}
          >
            Cancel
          </Button>
        )}
        {resumable && (
          <Button variant="outlined" data-testid="resume" disabled={task.busy} onClick={() => void resume()}>
            Resume
          </Button>
        )}
      </Stack>
      {task.error && <ErrorAlert error={task.error} context="run" />}
      {run && matches && view && (
        <>
          <JobProgress view={view} stateTestId="run-state" layers={card?.layers} />
          {view.error && view.state !== 'cancelled' && <ErrorAlert error={view.error} context="run" />}
          {view.state === 'cancelled' && (
            <Alert severity="warning" sx={{ my: 1 }}>
              Cancelled. Resume to go on: the layers already measured are kept and not computed again.
            </Alert>
          )}
          {view.state === 'done' && (
            <Alert severity="success" sx={{ my: 1 }}>
              Done{seconds !== null ? ` in ${formatSeconds(seconds)}` : ''}.{' '}
              {run.result ? 'Go on to review the result.' : 'Fetching the result…'}
            </Alert>
          )}
          {card && <LayerStrip view={view} layers={card.layers} />}
          {card && (
            <>
              <Typography variant="subtitle1" sx={{ mt: 2 }}>
                Error against size, per layer
              </Typography>
              <Typography variant="body2" color="text.secondary">
                Each curve is one layer: how much its output changes as less of its cache is kept. Curves
                appear as layers are measured; flat curves are layers that compress well.
              </Typography>
              <ProfileChart
                series={series}
                headDim={card.headDim}
                layers={card.layers}
                testId="live-profile"
              />
            </>
          )}
        </>
      )}
    </Box>
  );
}
