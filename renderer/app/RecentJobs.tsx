/** Jobs the engine remembers (`listJobs`); a compress job opens back into the wizard. */
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Chip from '@mui/material/Chip';
import Drawer from '@mui/material/Drawer';
import LinearProgress from '@mui/material/LinearProgress';
import List from '@mui/material/List';
import ListItem from '@mui/material/ListItem';
import ListItemText from '@mui/material/ListItemText';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { useEffect, useState } from 'react';
import type { JobSummary } from '../../main/contract/index.ts';
import { formatPercent } from '../../main/core/format.ts';
import { methodInfo } from '../state/methods.ts';
import { useApi } from './api-context.tsx';
import { ErrorAlert } from './ErrorAlert.tsx';
import { errorMessage } from './errors.ts';
import { baseName } from './paths.ts';
import { useTask } from './use-task.ts';

function describe(job: JobSummary): string {
  const what = job.kind === 'export' ? 'Export' : methodInfo(job.settings.method).name;
  return `${what} · ${baseName(job.settings.model)}`;
}

/** What the job aimed at, as its settings say: the budget, the share of the cache, a perplexity rise, or fixed ranks. */
export function targetOf(job: JobSummary): string {
  const s = job.settings;
  if (s.ranks) return `ranks K ${s.ranks.k} · V ${s.ranks.v}`;
  if (s.kvFraction !== undefined) {
    const by = s.objective === 'layer' ? ' by layer errors' : '';
    return `target: keep ${formatPercent(s.kvFraction, 1)} of the cache${by}`;
  }
  if (s.maxPplIncrease !== undefined)
    return `target: perplexity up to +${formatPercent(s.maxPplIncrease, 1)}`;
  if (s.budget !== undefined) return `error budget ${s.budget}`;
  return '';
}

/** What a finished compress job achieved (jobs from before the summary carried it show nothing). */
export function outcomeOf(job: JobSummary): string {
  const o = job.outcome;
  if (!o) return '';
  const ppl = (x: number) => x.toFixed(x < 100 ? 2 : 1);
  return (
    `kept ${formatPercent(o.kvFraction, 1)} of the cache · ` +
    `perplexity ${ppl(o.perplexity.original)} → ${ppl(o.perplexity.compressed)}`
  );
}

export function RecentJobs({
  open,
  onClose,
  onOpenJob,
}: {
  open: boolean;
  onClose: () => void;
  /** Resolves once the job is open in the wizard; rejects with the engine's error. */
  onOpenJob: (job: JobSummary) => Promise<void>;
}) {
  const api = useApi();
  const task = useTask();
  const [jobs, setJobs] = useState<JobSummary[] | null>(null);

  const refresh = () =>
    task.run(async () => {
      setJobs(await api.listJobs());
    });
  useEffect(() => {
    if (open) void refresh();
    // on each opening only
  }, [open]);

  const openJob = async (job: JobSummary) => {
    const opened = await task.run(async () => {
      await onOpenJob(job);
      return true;
    });
    if (opened) onClose();
  };

  return (
    <Drawer anchor="right" open={open} onClose={onClose}>
      <Box
        sx={{ width: 420, maxWidth: '100vw', p: 2 }}
        data-testid="recent-jobs-list"
        role="region"
        aria-label="Recent jobs"
      >
        <Stack direction="row" sx={{ justifyContent: 'space-between', alignItems: 'center' }}>
          <Typography variant="h6">Recent jobs</Typography>
          <Button onClick={() => void refresh()} disabled={task.busy}>
            Refresh
          </Button>
        </Stack>
        {task.busy && <LinearProgress />}
        {task.error && <ErrorAlert error={task.error} context="jobs" />}
        {jobs && jobs.length === 0 && (
          <Typography color="text.secondary" sx={{ mt: 2 }}>
            No jobs yet.
          </Typography>
        )}
        <List>
          {jobs?.map((job) => (
            <ListItem
              key={job.id}
              divider
              data-testid="recent-job"
              secondaryAction={
                job.kind === 'compress' && (
                  <Button size="small" onClick={() => void openJob(job)} disabled={task.busy}>
                    Open
                  </Button>
                )
              }
            >
              <ListItemText
                primary={describe(job)}
                secondary={
                  <>
                    <Chip size="small" label={job.state} component="span" sx={{ mr: 1 }} />
                    {new Date(job.createdAt).toLocaleString()}
                    <Box component="span" sx={{ display: 'block' }} data-testid="recent-job-target">
                      {targetOf(job)}
                    </Box>
                    {job.outcome && (
                      <Box component="span" sx={{ display: 'block' }} data-testid="recent-job-outcome">
                        {outcomeOf(job)}
                      </Box>
                    )}
                    {job.out && (
                      <Box component="span" sx={{ display: 'block', wordBreak: 'break-all' }}>
                        → {job.out}
                      </Box>
                    )}
                    {job.error && (
                      <Box component="span" sx={{ display: 'block' }}>
                        {errorMessage(job.error)}
                      </Box>
                    )}
                  </>
                }
              />
            </ListItem>
          ))}
        </List>
      </Box>
    </Drawer>
  );
}
