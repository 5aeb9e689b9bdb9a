import Alert from '@mui/material/Alert';
import AlertTitle from '@mui/material/AlertTitle';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Checkbox from '@mui/material/Checkbox';
import Dialog from '@mui/material/Dialog';
import DialogActions from '@mui/material/DialogActions';
import DialogContent from '@mui/material/DialogContent';
import DialogContentText from '@mui/material/DialogContentText';
import DialogTitle from '@mui/material/DialogTitle';
import FormControlLabel from '@mui/material/FormControlLabel';
import List from '@mui/material/List';
import ListItem from '@mui/material/ListItem';
import ListItemText from '@mui/material/ListItemText';
import Paper from '@mui/material/Paper';
import Stack from '@mui/material/Stack';
import Switch from '@mui/material/Switch';
import Typography from '@mui/material/Typography';
import { useEffect, useState } from 'react';
import type { ExportRequest, ReportData } from '../../main/contract/index.ts';
import { useApi } from '../app/api-context.tsx';
import { ErrorAlert } from '../app/ErrorAlert.tsx';
import { formatBytes, formatError } from '../../main/core/format.ts';
import { joinPath, suggestExportPath, baseName } from '../app/paths.ts';
import { PathField } from '../app/PathField.tsx';
import { useTask } from '../app/use-task.ts';
import { formatChange, qualityWarning } from '../state/quality.ts';
import { isActive } from '../state/run.ts';
import type { WizardState } from '../state/wizard.ts';
import { JobProgress } from './JobProgress.tsx';
import { QualityWarning } from './QualityWarning.tsx';
import type { StepProps } from './step-props.ts';
import { TryPanel, usePromptSuggestions } from './TryPanel.tsx';

const REPORT_FILES = ['rankwise-report.html', 'rankwise-report.json'];

/**
 * The ranks to export: none (the job's own) until a layer was set by hand, then the whole edited
 * allocation — what the review showed, layer for layer, even where the re-allocation moved other layers.
 */
export function exportRanks(state: WizardState): ExportRequest['ranks'] {
  const a = state.review.allocation;
  if (!a || (state.review.overrides.length === 0 && state.review.kvFraction === null)) return undefined;
  return a.layers.map((l) => ({ layer: l.layer, kRank: l.kRank, vRank: l.vRank }));
}

/** The layers exported at other ranks than the job allocated, as the report lists them. */
function EditedLayers({ report }: { report: ReportData }) {
  const edits = report.compress.edits ?? [];
  if (edits.length === 0) return null;
  return (
    <Alert severity="info" sx={{ mt: 2 }} data-testid="export-edits">
      <AlertTitle>
        {edits.length === 1 ? '1 layer' : `${edits.length} layers`} exported at other ranks than the job
        allocated
      </AlertTitle>
      {edits.map((e) => (
        <div key={e.layer}>
          Layer {e.layer}: K {e.job.kRank} → {e.exported.kRank}, V {e.job.vRank} → {e.exported.vRank}
        </div>
      ))}
      The report describes the exported model; the job&apos;s allocation is kept in it as{' '}
      <code>compress.jobAllocation</code>.
    </Alert>
  );
}

function ExportResult({ report }: { report: ReportData }) {
  const v = report.export.verification;
  const dir = report.export.dir;
  return (
    <Paper variant="outlined" sx={{ p: 2, mt: 2 }} data-testid="export-result">
      <Alert severity={v.passed ? 'success' : 'warning'}>
        <AlertTitle>
          {v.passed ? 'Exported and verified' : 'Exported, but verification found differences'}
        </AlertTitle>
        The compressed model is in <code data-testid="export-dir">{dir}</code>
      </Alert>
      <EditedLayers report={report} />
      <Typography variant="subtitle1" sx={{ mt: 2 }}>
        Report
      </Typography>
      <List dense>
        {REPORT_FILES.map((name) => (
          <ListItem key={name} data-testid="export-report">
            <ListItemText
              primary={joinPath(dir, name)}
              slotProps={{ primary: { sx: { wordBreak: 'break-all' } } }}
            />
          </ListItem>
        ))}
      </List>
      <Typography variant="subtitle1">Files</Typography>
      <List dense>
        {report.export.files.map((f) => (
          <ListItem key={f.name} data-testid="export-file">
            <ListItemText primary={f.name} secondary={formatBytes(f.bytes)} />
          </ListItem>
        ))}
      </List>
      <Typography variant="subtitle1">Verification ({v.windows} held-out windows)</Typography>
      <Typography variant="body2">
        Reloaded checkpoint vs the model in memory: relative logit error {formatError(v.checkpointRelError)}{' '}
        (tolerance {formatError(v.tolerance)}).
        <br />
        ONNX decoder with its cache ({v.onnxPrefillTokens} prefill tokens, {v.onnxDecodeSteps} decode steps):{' '}
        {formatError(v.onnxRelError)}.
        <br />
        Perplexity, reloaded {v.perplexity.reloaded.toFixed(3)} vs in memory{' '}
        {v.perplexity.inMemory.toFixed(3)}.
        <br />
        Cache measured {formatBytes(v.presentBytes.measured)}, predicted{' '}
        {formatBytes(v.presentBytes.predicted)}.
      </Typography>
    </Paper>
  );
}

export function ExportStep({ state, dispatch }: StepProps) {
  const api = useApi();
  const task = useTask();
  const run = state.run;
  const card = state.model.card;
  const job = state.export.job;
  const active = job ? isActive(job.view.state) : false;
  const ranks = exportRanks(state);
  const suggestions = usePromptSuggestions({ state, dispatch });

  useEffect(() => {
    if (state.export.path === '' && card && run) {
      dispatch({ type: 'exportField', patch: { path: suggestExportPath(card.dir, run.method) } });
    }
  }, [state.export.path, card, run, dispatch]);

  // once exported, the files' own measured perplexity is the one to judge (hand edits change it)
  const judged = job?.result?.compress ?? run?.result;
  const warning = qualityWarning(judged, state.warnAbove);
  const [confirming, setConfirming] = useState(false);
  const start = async () => {
    if (!run) return;
    const request: ExportRequest = {
      jobId: run.jobId,
      out: state.export.path.trim(),
      onnx: state.export.onnx,
      force: state.export.force,
      ...(ranks ? { ranks } : {}),
    };
    const summary = await task.run(() => api.exportJob(request));
    if (summary) {
      dispatch({
        type: 'jobStarted',
        slot: 'export',
        summary,
        settingsKey: run.settingsKey,
        method: run.method,
      });
    }
  };
  const newFolderName = card && run ? `${baseName(card.dir)}-${run.method}` : 'rankwise-export';

  return (
    <Box data-testid="step-export">
      <Typography sx={{ mb: 2 }}>
        Writes a folder that loads like the original checkpoint, with smaller key and value projections
        {state.export.onnx ? ' and an ONNX decoder with a thin cache' : ''}, then reloads it and checks its
        outputs against the model in memory before keeping it.
      </Typography>
      <PathField
        label="Export to (a new folder)"
        purpose="export"
        testId="export-path"
        value={state.export.path}
        onChange={(path) => dispatch({ type: 'exportField', patch: { path } })}
        fromChosen={(dir) => joinPath(dir, newFolderName)}
        helperText="A folder chosen with the button gets a new folder inside it, named after the model and method."
      />
      <Stack direction="row" spacing={2} sx={{ mt: 1, alignItems: 'center' }}>
        <FormControlLabel
          control={
            <Switch
              checked={state.export.onnx}
              onChange={(e) => dispatch({ type: 'exportField', patch: { onnx: e.target.checked } })}
              slotProps={{ input: { 'aria-label': 'Also write an ONNX decoder' } }}
            />
          }
          label="ONNX decoder"
        />
        <FormControlLabel
          control={
            <Checkbox
              checked={state.export.force}
              onChange={(e) => dispatch({ type: 'exportField', patch: { force: e.target.checked } })}
            />
          }
          label="Replace the folder if it exists"
        />
      </Stack>
      <Typography variant="body2" color="text.secondary" sx={{ mt: 1 }}>
        {ranks
          ? `Exports the allocation as edited in review (${state.review.overrides.length} layer(s) set by hand).`
          : 'Exports the allocation the job chose.'}
      </Typography>
      {judged && <QualityWarning result={judged} warnAbove={state.warnAbove} dispatch={dispatch} />}
      <Box>
        <Button
          variant="contained"
          color={warning ? 'error' : 'primary'}
          sx={{ mt: 2 }}
          data-testid="export"
          data-warned={warning ? 'true' : undefined}
          disabled={!run || task.busy || active || state.export.path.trim() === ''}
          // past the threshold the export asks first: one click must not ship a model that much worse
          onClick={() => (warning ? setConfirming(true) : void start())}
        >
          {warning ? 'Export anyway…' : 'Export'}
        </Button>
      </Box>
      <Dialog open={confirming} onClose={() => setConfirming(false)} data-testid="export-confirm">
        <DialogTitle>
          Export a model with {warning ? formatChange(warning.change) : ''} perplexity?
        </DialogTitle>
        <DialogContent>
          <DialogContentText>
            The job measured a perplexity increase of {warning ? formatChange(warning.change) : ''}, above the{' '}
            {warning ? formatChange(warning.threshold) : ''} you set. The exported model will be clearly worse
            than the original.
          </DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setConfirming(false)}>Go back</Button>
          <Button
            color="error"
            data-testid="export-confirm-yes"
            onClick={() => {
              setConfirming(false);
              void start();
            }}
          >
            Export anyway
          </Button>
        </DialogActions>
      </Dialog>
      {task.error && <ErrorAlert error={task.error} context="export" />}
      {job && (
        <>
          <JobProgress view={job.view} stateTestId="export-state" />
          {job.view.error && job.view.state !== 'cancelled' && (
            <ErrorAlert error={job.view.error} context="export" />
          )}
          {active && (
            <Button color="warning" onClick={() => void task.run(() => api.cancelJob(job.jobId))}>
              Cancel export
            </Button>
          )}
          {job.result && <ExportResult report={job.result} />}
          {job.result && card && (
            <Box sx={{ mt: 2 }}>
              <TryPanel
                key={job.jobId}
                model={{ dir: job.result.export.dir }}
                compare={{ dir: card.dir }}
                suggestions={suggestions}
                modelCaption={baseName(job.result.export.dir)}
                compareCaption={baseName(card.dir)}
                description="Generates from one prompt with the exported model, loaded from its folder as any user of it would, and with the original, side by side."
              />
            </Box>
          )}
        </>
      )}
    </Box>
  );
}
