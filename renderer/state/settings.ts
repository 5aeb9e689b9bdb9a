/**
 * Selectors over the wizard state: the JobSettings it describes, what is still missing or wrong on each
 * step, and which steps may open. Pure, so the stepper's rules are tested without rendering anything.
 */
import {
  MAX_PPL_INCREASE,
  type DataPreviewRequest,
  type DataSource,
  type JobSettings,
  type JobSummary,
  type ModelCard,
} from '../../main/contract/index.ts';
import { keySpacesFor, methodInfo, methodObstacle } from './methods.ts';
import { EMPTY_RUN_VIEW } from './run.ts';
import {
  DEFAULT_CALIB_WINDOWS,
  DEFAULT_EVAL_WINDOWS,
  DEFAULT_OBJECTIVE,
  DEFAULT_PPL_INCREASE,
  DEFAULT_WINDOW,
  initialState,
  STEP_IDS,
  type SourceState,
  type StepId,
  type TextSlot,
  type WizardState,
} from './wizard.ts';

/** A whole number written plainly ("12"), or NaN: "1e3", "12.5" and "" are not window counts. */
export function parseWhole(text: string): number {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : NaN;
}

/**
 * The memory target as a fraction of the cache, from "50" (per cent) or "0.5" (a fraction): people
 * write both, and no real target lies at or below 1 % (the smallest rank keeps 1/8 of a head).
 */
export function parseKeep(text: string): number {
  const n = parseDecimal(text);
  if (!(n > 0) || n > 100) return NaN;
  return n <= 1 ? n : n / 100;
}

/**
 * The perplexity increase accepted, as a fraction, from "5" (per cent) or "0.05" (a fraction): a number
 * below 1 is a fraction and one from 1 up a per cent, so "1" is 1 % and "0.5" is 50 % (half a per cent is
 * "0.005"). The field shows how it read the number. Up to MAX_PPL_INCREASE (900 %), as the engine accepts.
 */
export function parsePplIncrease(text: string): number {
  const n = parseDecimal(text);
  if (!(n > 0)) return NaN;
  const fraction = n < 1 ? n : n / 100;
  return fraction <= MAX_PPL_INCREASE ? fraction : NaN;
}

/** A decimal number ("0.05", ".5", "5e-2"), or NaN. */
export function parseDecimal(text: string): number {
  const t = text.trim();
  if (t === '' || !/^[+]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return NaN;
  return Number(t);
}

export function sourceOf(s: SourceState): DataSource | null {
  if (s.mode === 'demo') return { builtin: s.builtin };
  const path = s.path.trim();
  return path === '' ? null : { path };
}

export function modelReady(state: WizardState): boolean {
  return state.model.card !== null && state.model.loadedPath === state.model.path.trim();
}

export function previewRequest(state: WizardState, slot: TextSlot): DataPreviewRequest | null {
  const card = state.model.card;
  const source = sourceOf(state.data[slot]);
  const window = parseWhole(state.data.window);
  if (!card || !source || !(window >= 2)) return null;
  return { model: card.dir, source, window };
}

export function requestKey(request: unknown): string {
  return JSON.stringify(request);
}

/** The job the wizard describes, or null while a field cannot be parsed. */
export function settingsOf(state: WizardState): JobSettings | null {
  const card = state.model.card;
  const calib = sourceOf(state.data.calib);
  const evalSource = sourceOf(state.data.eval);
  const window = parseWhole(state.data.window);
  const calibWindows = parseWhole(state.data.calibWindows);
  const evalWindows = parseWhole(state.data.evalWindows);
  const seed = parseWhole(state.data.seed);
  if (!card || !calib || !evalSource) return null;
  if ([window, calibWindows, evalWindows, seed].some((n) => Number.isNaN(n))) return null;
  const m = state.method;
  const target: Pick<JobSettings, 'budget' | 'kvFraction' | 'maxPplIncrease' | 'objective'> = {};
  if (m.mode === 'budget') {
    const budget = parseDecimal(m.budget);
    if (!(budget > 0)) return null;
    target.budget = budget;
  } else if (m.mode === 'perplexity') {
    const increase = parsePplIncrease(m.pplIncrease);
    if (Number.isNaN(increase)) return null;
    target.maxPplIncrease = increase;
  } else {
    const fraction = parseKeep(m.keep);
    if (Number.isNaN(fraction)) return null;
    target.kvFraction = fraction;
    // the default is left out, so the settings (and the keys of jobs run before the choice) stay as they were
    if (m.objective !== DEFAULT_OBJECTIVE) target.objective = m.objective;
  }
  const settings: JobSettings = {
    model: card.dir,
    calib,
    eval: evalSource,
    method: m.method,
    ...target,
    window,
    calibWindows,
    evalWindows,
    seed,
  };
  // without RoPE there is one key space, and the engine picks it
  if (card.rope !== null) settings.keySpace = m.keySpace;
  return settings;
}

export function settingsKey(settings: JobSettings): string {
  return JSON.stringify(settings);
}

export function currentKey(state: WizardState): string | null {
  const s = settingsOf(state);
  return s ? settingsKey(s) : null;
}

/** The wizard still describes the job it ran: its finished run proves the earlier steps. */
export function runMatches(state: WizardState): boolean {
  return state.run !== null && state.run.settingsKey === currentKey(state);
}

function windowsIssue(slot: TextSlot, requested: number, available: number, window: number): string | null {
  const what = slot === 'calib' ? 'calibration' : 'evaluation';
  const min = slot === 'calib' ? 2 : 1;
  if (available < min) {
    return (
      `The ${what} text gives ${available} window${available === 1 ? '' : 's'} of ${window} tokens and ` +
      `needs ${min}: use a shorter window or a longer text.`
    );
  }
  if (requested > available) {
    return `The ${what} text gives only ${available} windows of ${window} tokens: ask for ${available} or fewer.`;
  }
  return null;
}

export function dataIssues(state: WizardState): string[] {
  const issues: string[] = [];
  const card = state.model.card;
  if (!card) return ['Load a model first.'];
  for (const slot of ['calib', 'eval'] as const) {
    if (!sourceOf(state.data[slot]))
      issues.push(`Choose the ${slot === 'calib' ? 'calibration' : 'evaluation'} file.`);
  }
  const window = parseWhole(state.data.window);
  const calibWindows = parseWhole(state.data.calibWindows);
  const evalWindows = parseWhole(state.data.evalWindows);
  if (!(window >= 2)) issues.push('The window length must be a whole number of at least 2 tokens.');
  else if (window > card.maxPositions)
    issues.push(`The window must fit the model’s context of ${card.maxPositions} tokens.`);
  if (!(calibWindows >= 2))
    issues.push('Calibration needs at least 2 windows: one to fit on, one held out to measure errors.');
  if (!(evalWindows >= 1)) issues.push('Evaluation needs at least 1 window.');
  if (Number.isNaN(parseWhole(state.data.seed))) issues.push('The seed must be a whole number.');
  if (issues.length > 0) return issues;
  for (const slot of ['calib', 'eval'] as const) {
    const request = previewRequest(state, slot);
    const preview = state.data.previews[slot];
    const what = slot === 'calib' ? 'calibration' : 'evaluation';
    const failed = state.data.previewErrors?.[slot];
    if (request && failed && failed.key === requestKey(request)) {
      issues.push(`The ${what} text could not be read: ${failed.value}`);
      continue;
    }
    if (!request || !preview || preview.key !== requestKey(request)) {
      issues.push(`Reading the ${what} text…`);
      continue;
    }
    const requested = slot === 'calib' ? calibWindows : evalWindows;
    const issue = windowsIssue(slot, requested, preview.value.windows, window);
    if (issue) issues.push(issue);
  }
  return issues;
}

export function methodIssues(state: WizardState): string[] {
  const m = state.method;
  const obstacle = methodObstacle(m.method, state.model.card ?? null);
  if (obstacle) return [`${methodInfo(m.method).name} cannot compress this model's keys: ${obstacle}.`];
  if (m.mode === 'budget' && !(parseDecimal(m.budget) > 0))
    return ['The error budget must be a positive number, such as 0.05.'];
  if (m.mode === 'memory') {
    if (Number.isNaN(parseKeep(m.keep)))
      return ['The memory to keep must be a per cent up to 100 (50) or a fraction up to 1 (0.5).'];
  }
  if (m.mode === 'perplexity' && Number.isNaN(parsePplIncrease(m.pplIncrease))) {
    return [
      m.pplIncrease.trim() === ''
        ? 'Give the perplexity increase to accept, such as 5 (per cent).'
        : `The perplexity increase must be a per cent from 1 to ${MAX_PPL_INCREASE * 100} (5 for 5 %) ` +
          'or a fraction below 1 (0.05 for 5 %).',
    ];
  }
  const key = currentKey(state);
  if (!key) return ['Complete the earlier steps.'];
  const estimate = m.estimate;
  if (!estimate || estimate.key !== key) return ['Estimating memory and time…'];
  if (!estimate.value.fits) return ['This job does not fit in the memory available.'];
  return [];
}

/** Whether `step` is complete: the next one may open. */
export function stepValid(state: WizardState, step: StepId): boolean {
  switch (step) {
    case 'model':
      return modelReady(state);
    case 'data':
      return modelReady(state) && (runMatches(state) || dataIssues(state).length === 0);
    case 'method':
      return runMatches(state) || methodIssues(state).length === 0;
    case 'run':
      return runMatches(state) && state.run!.view.state === 'done' && state.run!.result !== null;
    case 'review':
      return stepValid(state, 'run');
    case 'export':
      return state.export.job?.view.state === 'done';
  }
}

/** A step opens when every step before it is complete. */
export function canOpen(state: WizardState, step: StepId): boolean {
  const i = STEP_IDS.indexOf(step);
  return STEP_IDS.slice(0, i).every((s) => stepValid(state, s));
}

/** A memory target as the keep field would show it: a per cent, or a fraction where a per cent would read as one. */
function keepText(kvFraction: number | undefined): string {
  if (kvFraction === undefined) return '50';
  return kvFraction > 0.01 ? String(+(kvFraction * 100).toFixed(4)) : String(kvFraction);
}

/** A perplexity target as its field would show it: a per cent, or a fraction below 1 % (which a per cent would misread). */
function pplText(maxPplIncrease: number | undefined): string {
  if (maxPplIncrease === undefined) return String(DEFAULT_PPL_INCREASE);
  return maxPplIncrease >= 0.01 ? String(+(maxPplIncrease * 100).toPrecision(12)) : String(maxPplIncrease);
}

function targetMode(s: JobSettings): WizardState['method']['mode'] {
  if (s.kvFraction !== undefined) return 'memory';
  return s.maxPplIncrease !== undefined ? 'perplexity' : 'budget';
}

function sourceState(source: DataSource, fallback: SourceState): SourceState {
  return 'builtin' in source
    ? { ...fallback, mode: 'demo', builtin: source.builtin }
    : { ...fallback, mode: 'file', path: source.path };
}

/**
 * The wizard as it would have been to start `job`: opening a recent job fills every step from its
 * settings, and lands on review (finished) or run (anything else).
 */
export function stateForJob(job: JobSummary, card: ModelCard): WizardState {
  const base = initialState();
  const s = job.settings;
  const all = (n: number | undefined, fallback: number) => String(n ?? fallback);
  const state: WizardState = {
    ...base,
    step: job.state === 'done' ? 'review' : 'run',
    model: { path: card.dir, loadedPath: card.dir, card },
    data: {
      ...base.data,
      calib: sourceState(s.calib, base.data.calib),
      eval: sourceState(s.eval, base.data.eval),
      window: all(s.window, DEFAULT_WINDOW),
      calibWindows: all(s.calibWindows, DEFAULT_CALIB_WINDOWS),
      evalWindows: all(s.evalWindows, DEFAULT_EVAL_WINDOWS),
      seed: all(s.seed, 0),
      touched: { window: true, calibWindows: true, evalWindows: true },
    },
    method: {
      ...base.method,
      method: s.method,
      mode: targetMode(s),
      budget: String(s.budget ?? base.method.budget),
      keep: keepText(s.kvFraction),
      pplIncrease: pplText(s.maxPplIncrease),
      objective: s.objective ?? DEFAULT_OBJECTIVE,
      keySpace: keySpacesFor(s.method, card).includes(s.keySpace ?? 'auto') ? (s.keySpace ?? 'auto') : 'auto',
    },
  };
  // keyed by the settings as this wizard writes them, so they match until the user changes one
  const key = currentKey(state) ?? settingsKey(s);
  return {
    ...state,
    run: {
      jobId: job.id,
      settingsKey: key,
      method: s.method,
      view: { ...EMPTY_RUN_VIEW, state: job.state },
      result: null,
    },
  };
}
