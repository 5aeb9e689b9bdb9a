/** Wizard states part-way through, built with the wizard's own reducer, for tests that start at a later step. */
import { currentKey, previewRequest, requestKey, settingsOf } from '../../renderer/state/settings.ts';
import {
  initialState,
  wizardReducer,
  type StepId,
  type WizardAction,
  type WizardState,
} from '../../renderer/state/wizard.ts';
import type { CompressReport } from '../../main/contract/index.ts';
import { CARD, compressReport } from './fake-api.ts';
import type { FakeApi } from './fake-api.ts';

function apply(state: WizardState, ...actions: WizardAction[]): WizardState {
  return actions.reduce(wizardReducer, state);
}

function previewFor(state: WizardState, slot: 'calib' | 'eval') {
  const req = previewRequest(state, slot)!;
  const tokens = slot === 'calib' ? 2000 : 1200;
  return {
    type: 'previewLoaded' as const,
    slot,
    key: requestKey(req),
    preview: {
      path: `/demo/${slot}.txt`,
      bytes: 5000,
      tokens,
      windows: Math.floor(tokens / req.window),
      window: req.window,
      sample: 'text',
      promptSuggestions: [],
    },
  };
}

/** Model inspected, demo texts previewed with 128-token windows, the estimate in and fitting. */
export function readyState(step: StepId = 'method'): WizardState {
  let s = apply(
    initialState(),
    { type: 'modelPath', path: CARD.dir },
    { type: 'modelLoaded', path: CARD.dir, card: CARD },
  );
  s = apply(
    s,
    { type: 'dataField', field: 'window', value: '128' },
    { type: 'dataField', field: 'calibWindows', value: '8' },
    { type: 'dataField', field: 'evalWindows', value: '4' },
  );
  s = apply(s, previewFor(s, 'calib'), previewFor(s, 'eval'));
  s = apply(s, {
    type: 'estimateLoaded',
    key: currentKey(s)!,
    estimate: {
      memoryBytes: 1,
      availableBytes: 2,
      fits: true,
      seconds: 1,
      breakdown: { weights: 0, activations: 0, statistics: 0, runtime: 1 },
    },
  });
  return { ...s, step };
}

/**
 * A finished run of job-1 with its result fetched, known to `api` as done; `method` changes the method
 * step's fields the job ran with, `result` its report.
 */
export function doneState(
  api: FakeApi,
  step: StepId = 'review',
  opts: { method?: Partial<Omit<WizardState['method'], 'estimate'>>; result?: CompressReport } = {},
): WizardState {
  const ready = readyState('run');
  const s = opts.method ? apply(ready, { type: 'methodField', patch: opts.method }) : ready;
  const settings = settingsOf(s)!;
  api.seed('job-1', 'done', settings);
  const result = opts.result;
  if (result) {
    // the wizard fetches a done job's result again when it follows the job: the engine answers the same
    const fallback = api.getResult.getMockImplementation()!;
    api.getResult.mockImplementation(async (id) => (id === 'job-1' ? result : fallback(id)));
  }
  const done = apply(
    s,
    {
      type: 'jobStarted',
      slot: 'run',
      summary: { id: 'job-1', kind: 'compress', state: 'done', settings, createdAt: '2025-01-01T00:00:00Z' },
      settingsKey: currentKey(s)!,
      method: settings.method,
    },
    { type: 'jobResult', slot: 'run', jobId: 'job-1', result: result ?? compressReport() },
  );
  return { ...done, step };
}
