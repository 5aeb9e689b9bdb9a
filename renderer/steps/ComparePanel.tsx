/** A second method on the same data and budget, and the two results side by side. */
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import MenuItem from '@mui/material/MenuItem';
import Paper from '@mui/material/Paper';
import Stack from '@mui/material/Stack';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import TextField from '@mui/material/TextField';
import Typography from '@mui/material/Typography';
import { useState } from 'react';
import type { CompressReport, JobSettings, MethodId } from '../../main/contract/index.ts';
import { useApi } from '../app/api-context.tsx';
import { ErrorAlert } from '../app/ErrorAlert.tsx';
import { formatBytes, formatError, formatPercent, formatSeconds } from '../../main/core/format.ts';
import { useTask } from '../app/use-task.ts';
import { keySpacesFor, methodInfo, methodObstacle, METHODS } from '../state/methods.ts';
import { isActive } from '../state/run.ts';
import { settingsKey, settingsOf } from '../state/settings.ts';
import { JobProgress } from './JobProgress.tsx';
import type { StepProps } from './step-props.ts';

interface Row {
  label: string;
  value: (r: CompressReport) => string;
}

const totalSeconds = (r: CompressReport) => Object.values(r.seconds).reduce((a, b) => a + b, 0);

const ROWS: Row[] = [
  { label: 'Cache kept', value: (r) => formatPercent(r.kvFraction, 1) },
  { label: 'KV cache per token', value: (r) => formatBytes(r.kvBytesPerToken.compressed) },
  {
    label: 'Mean layer output error',
    value: (r) => (r.allocation ? formatError(r.allocation.weightedError) : '–'),
  },
  { label: 'Perplexity, original', value: (r) => r.perplexity.original.toFixed(3) },
  { label: 'Perplexity, compressed', value: (r) => r.perplexity.compressed.toFixed(3) },
  {
    label: 'Perplexity change',
    value: (r) => `${((r.perplexity.compressed / r.perplexity.original - 1) * 100).toFixed(2)} %`,
  },
  { label: 'Time', value: (r) => formatSeconds(totalSeconds(r)) },
];

export function CompareTable({ a, b }: { a: CompressReport; b: CompressReport }) {
  return (
    <Table size="small" data-testid="compare-table">
      <TableHead>
        <TableRow>
          <TableCell />
          <TableCell>{methodInfo(a.method).name}</TableCell>
          <TableCell>{methodInfo(b.method).name}</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {ROWS.map((row) => (
          <TableRow key={row.label}>
            <TableCell component="th" scope="row">
              {row.label}
            </TableCell>
            <TableCell>{row.value(a)}</TableCell>
            <TableCell>{row.value(b)}</TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

export function ComparePanel({ state, dispatch }: StepProps) {
  const api = useApi();
  const task = useTask();
  const main = state.run;
  const compare = state.review.compare;
  const others = METHODS.filter(
    (m) => m.id !== main?.method && methodObstacle(m.id, state.model.card ?? null) === null,
  );
  const [method, setMethod] = useState<MethodId>(compare?.method ?? others[0].id);

  const start = async () => {
    const base = settingsOf(state);
    if (!base) return;
    const settings: JobSettings = { ...base, method };
    // a key space the first method used may not exist for this one
    if (
      base.keySpace !== undefined &&
      !keySpacesFor(method, state.model.card ?? null).includes(base.keySpace)
    ) {
      settings.keySpace = 'auto';
    }
    const summary = await task.run(() => api.startJob(settings));
    if (summary) {
      dispatch({ type: 'jobStarted', slot: 'compare', summary, settingsKey: settingsKey(settings), method });
    }
  };

  const running = compare ? isActive(compare.view.state) : false;
  return (
    <Paper variant="outlined" sx={{ p: 2 }} data-testid="compare-panel">
      <Typography variant="h6">Compare with another method</Typography>
      <Typography variant="body2" color="text.secondary" sx={{ mb: 1 }}>
        Runs a second job on the same texts with the same budget, then puts both results side by side.
      </Typography>
      <Stack direction="row" spacing={1} sx={{ alignItems: 'center' }}>
        <TextField
          select
          size="small"
          label="Method"
          value={method}
          onChange={(e) => setMethod(e.target.value as MethodId)}
          data-testid="compare-method"
          sx={{ minWidth: 220 }}
        >
          {others.map((m) => (
            <MenuItem key={m.id} value={m.id}>
              {m.name}
            </MenuItem>
          ))}
        </TextField>
        <Button
          variant="outlined"
          data-testid="compare-start"
          disabled={task.busy || running}
          onClick={() => void start()}
        >
          Run {methodInfo(method).name}
        </Button>
        {compare && running && (
          <Button color="warning" onClick={() => void task.run(() => api.cancelJob(compare.jobId))}>
            Cancel
          </Button>
        )}
      </Stack>
      {task.error && <ErrorAlert error={task.error} context="run" />}
      {compare && (
        <Box>
          <JobProgress view={compare.view} stateTestId="compare-state" layers={state.model.card?.layers} />
          {compare.view.error && compare.view.state === 'failed' && (
            <ErrorAlert error={compare.view.error} context="run" />
          )}
        </Box>
      )}
      {main?.result && compare?.result && <CompareTable a={main.result} b={compare.result} />}
    </Paper>
  );
}
