/** Where a job is: its state, the stage under way with its progress and ETA, and the job's log. */
import Box from '@mui/material/Box';
import Chip from '@mui/material/Chip';
import LinearProgress from '@mui/material/LinearProgress';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { formatBytes, formatSeconds } from '../../main/core/format.ts';
import { isActive, type RunView } from '../state/run.ts';
import { isPerLayer, stageText } from './stages.ts';

const STATE_COLOR = {
  queued: 'default',
  running: 'info',
  done: 'success',
  failed: 'error',
  cancelled: 'warning',
} as const;

export function JobProgress({
  view,
  stateTestId,
  layers,
}: {
  view: RunView;
  stateTestId: string;
  /** Layer count, for per-layer stages. */
  layers?: number;
}) {
  const p = view.progress;
  const fraction = p && p.total > 0 ? p.done / p.total : 0;
  return (
    <Box sx={{ my: 2 }}>
      <Stack direction="row" spacing={1} sx={{ alignItems: 'center' }}>
        <Typography variant="body2">State:</Typography>
        <Chip
          size="small"
          color={view.state ? STATE_COLOR[view.state] : 'default'}
          label={
            <>
              <span data-testid={stateTestId}>{view.state ?? ''}</span>
              {view.state ? null : 'not started'}
            </>
          }
        />
        {p && isActive(view.state) && (
          <Typography variant="body2" color="text.secondary">
            {p.etaSeconds !== null && <>about {formatSeconds(p.etaSeconds)} left in this stage · </>}
            engine memory {formatBytes(p.memoryBytes)}
          </Typography>
        )}
      </Stack>
      {p && isActive(view.state) && (
        <Box sx={{ mt: 1 }} data-testid="job-progress" data-stage={p.stage}>
          <Typography variant="body2">
            {stageText(p.stage)}
            {isPerLayer(p.stage) && p.layer >= 0 && layers ? ` — layer ${p.layer + 1} of ${layers}` : ''}
            {p.step !== undefined ? ` — step ${p.step}` : ''}
          </Typography>
          <LinearProgress
            variant="determinate"
            value={Math.round(fraction * 100)}
            aria-label={`${stageText(p.stage)}: ${p.done} of ${p.total}`}
          />
          <Typography variant="caption" color="text.secondary">
            {p.done} of {p.total}
          </Typography>
        </Box>
      )}
      {view.state === 'queued' && <LinearProgress sx={{ mt: 1 }} aria-label="Waiting to start" />}
      {view.logs.length > 0 && (
        <Typography
          component="pre"
          variant="caption"
          sx={{ mt: 1, maxHeight: 80, overflow: 'auto', whiteSpace: 'pre-wrap', color: 'text.secondary' }}
        >
          {view.logs.slice(-5).join('\n')}
        </Typography>
      )}
    </Box>
  );
}
