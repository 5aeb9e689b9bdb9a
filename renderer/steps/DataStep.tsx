import Alert from '@mui/material/Alert';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import LinearProgress from '@mui/material/LinearProgress';
import Paper from '@mui/material/Paper';
import Stack from '@mui/material/Stack';
import TextField from '@mui/material/TextField';
import ToggleButton from '@mui/material/ToggleButton';
import ToggleButtonGroup from '@mui/material/ToggleButtonGroup';
import Typography from '@mui/material/Typography';
import type { DataPreview } from '../../main/contract/index.ts';
import { ErrorAlert } from '../app/ErrorAlert.tsx';
import { formatBytes } from '../../main/core/format.ts';
import { PathField } from '../app/PathField.tsx';
import { dataIssues, previewRequest, requestKey } from '../state/settings.ts';
import type { WizardState } from '../state/wizard.ts';
import type { TextSlot } from '../state/wizard.ts';
import type { StepProps } from './step-props.ts';
import { usePreview } from './use-preview.ts';

const SLOT_TEXT: Record<TextSlot, { title: string; help: string; demo: string }> = {
  calib: {
    title: 'Calibration text',
    help:
      'Text the model reads so Rankwise can see what its keys and values look like. A few thousand tokens ' +
      'of text like the one you will use the model on is enough.',
    demo: 'Built-in demo text',
  },
  eval: {
    title: 'Evaluation text',
    help: 'Different text, used only to measure how much the compressed model’s predictions suffer (perplexity).',
    demo: 'Built-in demo text',
  },
};

function PreviewCard({ preview, slot }: { preview: DataPreview; slot: TextSlot }) {
  return (
    <Box data-testid={`${slot}-preview`} sx={{ mt: 1 }}>
      <Typography variant="body2">
        {formatBytes(preview.bytes)} · <strong data-testid={`${slot}-tokens`}>{preview.tokens}</strong> tokens
        · <strong>{preview.windows}</strong> windows of {preview.window} tokens
      </Typography>
      <Typography
        variant="body2"
        component="pre"
        sx={{
          mt: 1,
          p: 1,
          maxHeight: 96,
          overflow: 'auto',
          whiteSpace: 'pre-wrap',
          fontFamily: 'monospace',
          bgcolor: 'action.hover',
          borderRadius: 1,
        }}
      >
        {preview.sample || '(empty)'}
      </Typography>
    </Box>
  );
}

function SourcePicker({ state, dispatch, slot }: StepProps & { slot: TextSlot }) {
  const source = state.data[slot];
  const text = SLOT_TEXT[slot];
  const { busy, error, preview, retry } = usePreview(state, slot, dispatch);
  return (
    <Paper variant="outlined" sx={{ p: 2, flex: 1, minWidth: 0 }}>
      <Typography variant="subtitle1">{text.title}</Typography>
      <Typography variant="body2" color="text.secondary" sx={{ mb: 1 }}>
        {text.help}
      </Typography>
      <ToggleButtonGroup
        exclusive
        size="small"
        value={source.mode}
        // clicking the chosen button again would clear the choice: a text must always be chosen
        onChange={(_, mode: 'demo' | 'file' | null) =>
          mode && dispatch({ type: 'source', slot, patch: { mode } })
        }
        sx={{ mb: 1 }}
      >
        <ToggleButton value="demo" data-testid={`${slot}-demo`}>
          {text.demo}
        </ToggleButton>
        <ToggleButton value="file" data-testid={`${slot}-file`}>
          A file
        </ToggleButton>
      </ToggleButtonGroup>
      <PathField
        label="Text file (.txt, .jsonl, .json, .gz, .parquet)"
        purpose="data"
        testId={`${slot}-path`}
        value={source.path}
        // typing a path means using it
        onChange={(path) => dispatch({ type: 'source', slot, patch: { path, mode: 'file' } })}
      />
      {busy && <LinearProgress sx={{ mt: 1 }} />}
      {error && (
        <ErrorAlert
          error={error}
          context="data"
          action={
            <Button color="inherit" size="small" onClick={retry}>
              Retry
            </Button>
          }
        />
      )}
      {preview && !error && <PreviewCard preview={preview} slot={slot} />}
    </Paper>
  );
}

function NumberField({
  label,
  value,
  testId,
  helperText,
  onChange,
}: {
  label: string;
  value: string;
  testId: string;
  helperText: string;
  onChange: (v: string) => void;
}) {
  return (
    <TextField
      label={label}
      size="small"
      value={value}
      helperText={helperText}
      onChange={(e) => onChange(e.target.value)}
      data-testid={testId}
      slotProps={{ htmlInput: { inputMode: 'numeric' } }}
      sx={{ flex: 1 }}
    />
  );
}

/** The preview of the text as the form now asks for it (null while it is read, or when it failed). */
function currentPreview(state: WizardState, slot: TextSlot): DataPreview | null {
  const request = previewRequest(state, slot);
  const held = state.data.previews[slot];
  return request && held && held.key === requestKey(request) ? held.value : null;
}

/** What a windows field's helper says: how many windows the text holds, once it is known. */
function windowsHelp(preview: DataPreview | null, rest: string): string {
  if (!preview) return rest;
  const n = preview.windows;
  return `The text holds ${n} window${n === 1 ? '' : 's'} of ${preview.window} tokens. ${rest}`;
}

export function DataStep({ state, dispatch }: StepProps) {
  const issues = dataIssues(state);
  const calibPreview = currentPreview(state, 'calib');
  const evalPreview = currentPreview(state, 'eval');
  const field = (f: 'window' | 'calibWindows' | 'evalWindows' | 'seed') => (value: string) =>
    dispatch({ type: 'dataField', field: f, value });
  return (
    <Box data-testid="step-data">
      <Stack direction={{ xs: 'column', md: 'row' }} spacing={2}>
        <SourcePicker state={state} dispatch={dispatch} slot="calib" />
        <SourcePicker state={state} dispatch={dispatch} slot="eval" />
      </Stack>
      <Stack direction={{ xs: 'column', md: 'row' }} spacing={2} sx={{ mt: 3 }}>
        <NumberField
          label="Window length (tokens)"
          testId="window"
          value={state.data.window}
          onChange={field('window')}
          helperText="The text is cut into windows of this many tokens; longer windows show longer-range behaviour."
        />
        <NumberField
          label="Calibration windows"
          testId="calib-windows"
          value={state.data.calibWindows}
          onChange={field('calibWindows')}
          helperText={windowsHelp(
            calibPreview,
            'More windows: better estimates, slower job. A quarter (up to 8) is held out to measure errors.',
          )}
        />
        <NumberField
          label="Evaluation windows"
          testId="eval-windows"
          value={state.data.evalWindows}
          onChange={field('evalWindows')}
          helperText={windowsHelp(evalPreview, 'Windows used to measure perplexity before and after.')}
        />
        <NumberField
          label="Seed"
          testId="seed"
          value={state.data.seed}
          onChange={field('seed')}
          helperText="Fixes every random choice, so a rerun gives the same result."
        />
      </Stack>
      {issues.length > 0 && (
        <Alert severity="info" sx={{ mt: 2 }} data-testid="data-issues">
          {issues.map((i) => (
            <div key={i}>{i}</div>
          ))}
        </Alert>
      )}
    </Box>
  );
}
