/**
 * Try it: one prompt through the compressed model and the original side by side, streamed token by
 * token, with each side's speed and cache size as they run, where the compressed text first departs from
 * the original's, and, after the run, how much of the two texts agree and the mean KL divergence.
 */
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Chip from '@mui/material/Chip';
import CircularProgress from '@mui/material/CircularProgress';
import Collapse from '@mui/material/Collapse';
import LinearProgress from '@mui/material/LinearProgress';
import Paper from '@mui/material/Paper';
import Stack from '@mui/material/Stack';
import { alpha } from '@mui/material/styles';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import TextField from '@mui/material/TextField';
import Typography from '@mui/material/Typography';
import { useEffect, useReducer, useRef, useState } from 'react';
import type {
  TryModel,
  TryPromptResult,
  TryRequest,
  TrySide,
  TrySideResult,
} from '../../main/contract/index.ts';
import { useApi } from '../app/api-context.tsx';
import { ErrorAlert } from '../app/ErrorAlert.tsx';
import type { ErrorContext } from '../app/errors.ts';
import { errorInfoOf } from '../app/errors.ts';
import { formatBytes, formatError, formatPercent, formatSeconds } from '../../main/core/format.ts';
import { useTask } from '../app/use-task.ts';
import {
  columnText,
  divergenceOf,
  EMPTY_SAMPLING,
  EMPTY_TRY_VIEW,
  samplingOf,
  tryActive,
  tryReducer,
  type TrySamplingFields,
  type TryView,
} from '../state/try.ts';
import type { StepProps } from './step-props.ts';
import { usePreview } from './use-preview.ts';

const DEFAULT_MAX_NEW_TOKENS = 128;
const ERROR_CONTEXT: ErrorContext = 'try';

/** The calibration text's paragraph beginnings (its preview is fetched again for a job opened later). */
export function usePromptSuggestions({ state, dispatch }: StepProps): string[] {
  return usePreview(state, 'calib', dispatch).preview?.promptSuggestions ?? [];
}

const COLUMNS: { side: TrySide; title: string }[] = [
  { side: 'model', title: 'Compressed' },
  { side: 'compare', title: 'Original' },
];

const STOP_REASONS: Record<TrySideResult['stopReason'], string> = {
  eos: 'end of text',
  limit: 'token limit',
  context: 'context full',
  stopped: 'stopped',
};

const SAMPLING_FIELDS: {
  key: keyof TrySamplingFields;
  label: string;
  placeholder: string;
  testId?: string;
}[] = [
  {
    key: 'maxNewTokens',
    label: 'Max new tokens',
    placeholder: String(DEFAULT_MAX_NEW_TOKENS),
    testId: 'try-max-new-tokens',
  },
  { key: 'temperature', label: 'Temperature', placeholder: '0 (greedy)' },
  { key: 'topK', label: 'Top-k', placeholder: 'all' },
  { key: 'topP', label: 'Top-p', placeholder: '1' },
  { key: 'seed', label: 'Seed', placeholder: '0' },
];

const speed = (tokensPerSecond: number | null) =>
  tokensPerSecond === null || !Number.isFinite(tokensPerSecond)
    ? '–'
    : `${tokensPerSecond.toFixed(1)} tokens/s`;

function StreamColumn({
  view,
  side,
  title,
  caption,
  active,
}: {
  view: TryView;
  side: TrySide;
  title: string;
  caption: string;
  active: boolean;
}) {
  const live = view[side];
  const { before, after } = columnText(view, side);
  const at = divergenceOf(view);
  return (
    <Paper variant="outlined" sx={{ p: 1.5, flex: 1, minWidth: 0 }}>
      <Stack direction="row" spacing={1} sx={{ alignItems: 'baseline' }}>
        <Typography variant="subtitle1" sx={{ fontWeight: 600 }}>
          {title}
        </Typography>
        <Typography
          variant="caption"
          color="text.secondary"
          noWrap
          title={view.result?.[side]?.label ?? caption}
          sx={{ minWidth: 0, flex: 1 }}
        >
          {caption}
        </Typography>
        {active && <CircularProgress size={14} />}
      </Stack>
      <Typography variant="body2" color="text.secondary" data-testid={`try-speed-${side}`}>
        {speed(live.tokensPerSecond)} · KV cache{' '}
        {live.kvCacheBytes === null ? '–' : formatBytes(live.kvCacheBytes)}
      </Typography>
      <Box
        data-testid={`try-stream-${side}`}
        sx={{
          mt: 1,
          p: 1,
          minHeight: 96,
          maxHeight: 320,
          overflowY: 'auto',
          borderRadius: 1,
          bgcolor: 'action.hover',
          whiteSpace: 'pre-wrap',
          wordBreak: 'break-word',
          typography: 'body2',
          lineHeight: 1.6,
        }}
      >
        <Box component="span" sx={{ color: 'text.secondary' }}>
          {view.prompt}
        </Box>
        <Box component="span" data-testid={`try-text-${side}`}>
          {before}
          {after !== '' && (
            <Box
              component="mark"
              data-testid="try-divergence"
              data-index={at ?? undefined}
              title={`From token ${(at ?? 0) + 1} on, the compressed model wrote something else`}
              sx={{
                color: 'inherit',
                bgcolor: (t) => alpha(t.palette.warning.main, 0.28),
                borderRadius: 0.5,
              }}
            >
              {after}
            </Box>
          )}
        </Box>
      </Box>
    </Paper>
  );
}

function SideTable({ result }: { result: TryPromptResult }) {
  const sides = [result.model, result.compare].filter((s): s is TrySideResult => s !== undefined);
  const rows: { label: string; value: (s: TrySideResult) => string }[] = [
    { label: 'New tokens', value: (s) => String(s.ids.length) },
    { label: 'Ended by', value: (s) => STOP_REASONS[s.stopReason] },
    {
      label: 'Prompt',
      value: (s) =>
        `${s.promptTokens} tokens in ${formatSeconds(s.prefillSeconds)} (${speed(s.prefillTokensPerSecond)})`,
    },
    { label: 'Generation speed', value: (s) => speed(s.decodeTokensPerSecond) },
    { label: 'KV cache at the end', value: (s) => formatBytes(s.kvCacheBytes) },
    { label: 'KV cache per token', value: (s) => formatBytes(s.kvBytesPerToken) },
  ];
  return (
    <Table size="small" sx={{ mt: 1 }}>
      <TableHead>
        <TableRow>
          <TableCell />
          {COLUMNS.slice(0, sides.length).map((c) => (
            <TableCell key={c.side}>{c.title}</TableCell>
          ))}
        </TableRow>
      </TableHead>
      <TableBody>
        {rows.map((row) => (
          <TableRow key={row.label}>
            <TableCell component="th" scope="row">
              {row.label}
            </TableCell>
            {sides.map((s, i) => (
              <TableCell key={i}>{row.value(s)}</TableCell>
            ))}
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

function Stats({ view, maxNewTokens }: { view: TryView; maxNewTokens: number }) {
  const result = view.result;
  const generated = Math.max(view.model.tokens.length, view.compare.tokens.length);
  const state = result ? 'done' : (view.state ?? 'queued');
  let body;
  if (result) {
    const c = result.comparison;
    const stopped = [result.model, result.compare].some((s) => s?.stopReason === 'stopped');
    body = (
      <>
        {c ? (
          <Stack direction={{ xs: 'column', sm: 'row' }} spacing={{ xs: 0.5, sm: 3 }}>
            <Typography variant="body2">
              Identical tokens:{' '}
              <strong data-testid="try-identical">{formatPercent(c.identicalShare, 0)}</strong>
            </Typography>
            <Typography variant="body2">
              Mean KL (original ‖ compressed): <strong data-testid="try-kl">{formatError(c.meanKl)}</strong>{' '}
              nats over {c.klPositions} positions
            </Typography>
            <Typography variant="body2">
              {c.firstDivergence === null
                ? 'The two texts are the same.'
                : `The texts part at token ${c.firstDivergence + 1}.`}
            </Typography>
          </Stack>
        ) : (
          <Typography variant="body2" color="text.secondary">
            {stopped
              ? 'Stopped before the end: the texts are not compared.'
              : 'Sampled texts are not compared (compare with temperature 0, the greedy default).'}
          </Typography>
        )}
        <SideTable result={result} />
      </>
    );
  } else if (view.state === 'queued') {
    body = (
      <Typography variant="body2" color="text.secondary">
        Waiting for the engine (a job that is running goes first)…
      </Typography>
    );
  } else if (view.state === 'running') {
    body = (
      <Box>
        <Typography variant="body2" color="text.secondary">
          {generated} of up to {maxNewTokens} new tokens
        </Typography>
        <LinearProgress
          variant="determinate"
          value={Math.min(100, (generated / maxNewTokens) * 100)}
          sx={{ mt: 0.5 }}
        />
      </Box>
    );
  } else if (view.state === 'cancelled') {
    body = (
      <Typography variant="body2" color="text.secondary">
        Stopped before it began.
      </Typography>
    );
  } else if (view.state === 'done') {
    body = (
      <Typography variant="body2" color="text.secondary">
        Fetching the result…
      </Typography>
    );
  }
  return (
    <Box data-testid="try-stats" data-state={state} sx={{ mt: 2 }}>
      {body}
    </Box>
  );
}

export function TryPanel({
  model,
  compare,
  suggestions,
  modelCaption,
  compareCaption,
  description,
}: {
  model: TryModel;
  compare: TryModel;
  suggestions: string[];
  modelCaption: string;
  compareCaption: string;
  description: string;
}) {
  const api = useApi();
  const task = useTask();
  const [view, send] = useReducer(tryReducer, EMPTY_TRY_VIEW);
  const [typed, setTyped] = useState<string | null>(null);
  const [more, setMore] = useState(false);
  const [fields, setFields] = useState<TrySamplingFields>(EMPTY_SAMPLING);
  const [maxNewTokens, setMaxNewTokens] = useState(DEFAULT_MAX_NEW_TOKENS);
  const prompt = typed ?? suggestions[0] ?? '';
  const sampling = samplingOf(fields);
  const active = tryActive(view);
  const runId = view.runId;

  useEffect(() => {
    if (runId === null) return;
    let live = true;
    const fetchResult = async () => {
      try {
        const result = await api.getTryResult(runId);
        if (live) send({ type: 'result', runId, result });
      } catch (e) {
        if (live) send({ type: 'resultError', runId, error: errorInfoOf(e) });
      }
    };
    const unsubscribe = api.subscribe(runId, (event) => {
      if (!live) return;
      send({ type: 'event', event });
      if (event.type === 'state' && event.state === 'done') void fetchResult();
    });
    return () => {
      live = false;
      unsubscribe();
    };
  }, [api, runId]);

  // a run nobody sees any more is stopped: it would hold up the jobs queued behind it
  const running = useRef<string | null>(null);
  useEffect(() => {
    running.current = active ? runId : null;
  });
  useEffect(
    () => () => {
      if (running.current) api.cancelJob(running.current).catch(() => undefined);
    },
    [api],
  );

  const generate = async () => {
    const request: TryRequest = { model, compare, prompt, ...sampling.request };
    const run = await task.run(() => api.startTry(request));
    if (run) {
      setMaxNewTokens(sampling.request.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS);
      send({ type: 'started', runId: run.id, prompt, state: run.state });
    }
  };
  const stop = () => {
    if (runId) void task.run(() => api.cancelJob(runId));
  };

  const error = task.error ?? (view.state === 'cancelled' ? null : view.error);
  const invalid = Object.keys(sampling.errors).length > 0;

  return (
    <Paper variant="outlined" sx={{ p: 2 }} data-testid="try-panel">
      <Typography variant="h6">Try it</Typography>
      <Typography variant="body2" color="text.secondary" sx={{ mb: 1.5 }}>
        {description}
      </Typography>
      {suggestions.length > 0 && (
        <Stack direction="row" sx={{ flexWrap: 'wrap', gap: 1, alignItems: 'center', mb: 1.5 }}>
          <Typography variant="body2" color="text.secondary">
            From the calibration text:
          </Typography>
          {suggestions.map((s) => (
            <Chip
              key={s}
              size="small"
              label={s}
              variant={s === prompt ? 'filled' : 'outlined'}
              color={s === prompt ? 'primary' : 'default'}
              onClick={() => setTyped(s)}
              data-testid="try-suggestion"
              sx={{ maxWidth: 320 }}
            />
          ))}
        </Stack>
      )}
      <TextField
        label="Prompt"
        fullWidth
        multiline
        minRows={2}
        maxRows={8}
        value={prompt}
        onChange={(e) => setTyped(e.target.value)}
        data-testid="try-prompt"
        placeholder="A beginning for both models to continue"
      />
      <Stack direction="row" spacing={1} sx={{ mt: 1.5, alignItems: 'center' }}>
        <Button
          variant="contained"
          data-testid="try-generate"
          disabled={active || task.busy || prompt.trim() === '' || invalid}
          onClick={() => void generate()}
        >
          Generate
        </Button>
        {active && (
          <Button color="warning" variant="outlined" data-testid="try-stop" onClick={stop}>
            Stop
          </Button>
        )}
        <Button
          size="small"
          data-testid="try-more"
          aria-expanded={more}
          onClick={() => setMore((m) => !m)}
          sx={{ ml: 'auto' }}
        >
          {more ? 'Fewer settings' : 'More settings'}
        </Button>
      </Stack>
      <Collapse in={more} unmountOnExit>
        <Stack direction="row" sx={{ flexWrap: 'wrap', gap: 1.5, mt: 2 }}>
          {SAMPLING_FIELDS.map((f) => (
            <TextField
              key={f.key}
              size="small"
              label={f.label}
              placeholder={f.placeholder}
              value={fields[f.key]}
              onChange={(e) => setFields({ ...fields, [f.key]: e.target.value })}
              error={sampling.errors[f.key] !== undefined}
              helperText={sampling.errors[f.key] ?? ' '}
              data-testid={f.testId}
              slotProps={{ htmlInput: { inputMode: 'decimal' }, inputLabel: { shrink: true } }}
              sx={{ width: 150 }}
            />
          ))}
        </Stack>
        <Typography variant="caption" color="text.secondary">
          Empty fields keep the defaults: greedy decoding (temperature 0), which the comparison of the two
          texts needs, and {DEFAULT_MAX_NEW_TOKENS} new tokens. Top-k, top-p and the seed apply when the
          temperature is above 0.
        </Typography>
      </Collapse>
      {error && <ErrorAlert error={error} context={ERROR_CONTEXT} />}
      {runId !== null && (
        <>
          <Stack direction={{ xs: 'column', md: 'row' }} spacing={2} sx={{ mt: 2 }}>
            {COLUMNS.map((c) => (
              <StreamColumn
                key={c.side}
                view={view}
                side={c.side}
                title={c.title}
                caption={c.side === 'model' ? modelCaption : compareCaption}
                active={active}
              />
            ))}
          </Stack>
          <Stats view={view} maxNewTokens={maxNewTokens} />
        </>
      )}
    </Paper>
  );
}
