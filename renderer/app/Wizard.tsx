/**
 * The six steps. A step opens only when every step before it is complete; going back keeps everything,
 * since all of it lives in one reducer above the steps. Jobs are followed here, not in the steps, so a
 * running job keeps reporting while another step is on screen.
 */
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Paper from '@mui/material/Paper';
import Stack from '@mui/material/Stack';
import Step from '@mui/material/Step';
import StepButton from '@mui/material/StepButton';
import Stepper from '@mui/material/Stepper';
import Typography from '@mui/material/Typography';
import { useEffect, useReducer, useRef, type JSX } from 'react';
import type { JobSummary } from '../../main/contract/index.ts';
import { canOpen, dataIssues, methodIssues, stateForJob, stepValid } from '../state/settings.ts';
import { initialState, STEP_IDS, wizardReducer, type StepId, type WizardState } from '../state/wizard.ts';
import { DataStep } from '../steps/DataStep.tsx';
import { ExportStep } from '../steps/ExportStep.tsx';
import { MethodStep } from '../steps/MethodStep.tsx';
import { ModelStep } from '../steps/ModelStep.tsx';
import { ReviewStep } from '../steps/ReviewStep.tsx';
import { RunStep } from '../steps/RunStep.tsx';
import type { StepProps } from '../steps/step-props.ts';
import { useApi } from './api-context.tsx';
import { RecentJobs } from './RecentJobs.tsx';
import { useFollowJob } from './use-follow-job.ts';

export const STEP_TITLES: Record<StepId, string> = {
  model: 'Model',
  data: 'Data',
  method: 'Method and budget',
  run: 'Run',
  review: 'Review',
  export: 'Export',
};

const STEP_VIEWS: Record<StepId, (p: StepProps) => JSX.Element> = {
  model: ModelStep,
  data: DataStep,
  method: MethodStep,
  run: RunStep,
  review: ReviewStep,
  export: ExportStep,
};

/** Why Next is disabled, in a sentence. */
export function blockedReason(state: WizardState): string | null {
  if (stepValid(state, state.step)) return null;
  switch (state.step) {
    case 'model':
      return 'Inspect a model folder to continue.';
    case 'data':
      return dataIssues(state)[0] ?? null;
    case 'method':
      return methodIssues(state)[0] ?? null;
    case 'run':
      return 'Start the job and let it finish to review it.';
    default:
      return null;
  }
}

export function Wizard({
  initial,
  recentOpen = false,
  onRecentClose = () => undefined,
}: {
  initial?: WizardState;
  recentOpen?: boolean;
  onRecentClose?: () => void;
}) {
  const api = useApi();
  const [state, dispatch] = useReducer(wizardReducer, initial, (i) => i ?? initialState());
  useFollowJob('run', state.run?.jobId ?? null, dispatch);
  useFollowJob('compare', state.review.compare?.jobId ?? null, dispatch);
  useFollowJob('export', state.export.job?.jobId ?? null, dispatch);

  const index = STEP_IDS.indexOf(state.step);
  const heading = useRef<HTMLHeadingElement>(null);
  const first = useRef(true);
  useEffect(() => {
    // a screen reader hears the new step's title; the first render leaves focus where the page puts it
    if (first.current) first.current = false;
    else heading.current?.focus();
  }, [state.step]);

  const go = (step: StepId) => {
    if (canOpen(state, step)) dispatch({ type: 'go', step });
  };
  const openJob = async (job: JobSummary) => {
    const card = await api.inspect(job.settings.model);
    dispatch({ type: 'openJob', state: stateForJob(job, card) });
  };
  const reason = blockedReason(state);
  const View = STEP_VIEWS[state.step];
  const last = index === STEP_IDS.length - 1;

  return (
    <Box>
      <Stepper nonLinear activeStep={index} sx={{ mb: 3, flexWrap: 'wrap' }}>
        {STEP_IDS.map((id, i) => (
          <Step key={id} completed={i < index && stepValid(state, id)} disabled={!canOpen(state, id)}>
            <StepButton onClick={() => go(id)} data-testid={`stepper-${id}`}>
              {STEP_TITLES[id]}
            </StepButton>
          </Step>
        ))}
      </Stepper>
      <Paper sx={{ p: { xs: 2, md: 3 } }}>
        <Typography variant="h5" component="h2" tabIndex={-1} ref={heading} sx={{ mb: 2, outline: 'none' }}>
          {index + 1}. {STEP_TITLES[state.step]}
        </Typography>
        <View state={state} dispatch={dispatch} />
        <Stack direction="row" spacing={2} sx={{ mt: 3, alignItems: 'center' }}>
          <Button data-testid="back" disabled={index === 0} onClick={() => go(STEP_IDS[index - 1])}>
            Back
          </Button>
          {!last && (
            <Button
              variant="contained"
              data-testid="next"
              disabled={reason !== null || !stepValid(state, state.step)}
              onClick={() => go(STEP_IDS[index + 1])}
            >
              Next
            </Button>
          )}
          {reason && (
            <Typography variant="body2" color="text.secondary" data-testid="next-blocked">
              {reason}
            </Typography>
          )}
        </Stack>
      </Paper>
      <RecentJobs open={recentOpen} onClose={onRecentClose} onOpenJob={openJob} />
    </Box>
  );
}
