/**
 * The wizard's state, as one reducer: every step reads and writes here, so going back and forth keeps
 * what was entered. Form numbers are kept as the text the user typed (a half-typed "0." must survive) and
 * parsed by the selectors in ./settings.ts.
 */
import type {
  Allocation,
  CompressReport,
  DataPreview,
  ErrorInfo,
  JobEstimate,
  JobEvent,
  JobSettings,
  JobSummary,
  MethodId,
  ModelCard,
  RankOverride,
  ReportData,
} from '../../main/contract/index.ts';
import type { Objective } from '../../main/core/kv.ts';
import { applyJobEvent, EMPTY_RUN_VIEW, type RunView } from './run.ts';

export const STEP_IDS = ['model', 'data', 'method', 'run', 'review', 'export'] as const;
export type StepId = (typeof STEP_IDS)[number];

export type KeySpaceSetting = NonNullable<JobSettings['keySpace']>;
export type BuiltinText = 'demo-calibration' | 'demo-evaluation';
export type TextSlot = 'calib' | 'eval';
export type TargetMode = 'budget' | 'memory' | 'perplexity';

export interface SourceState {
  mode: 'demo' | 'file';
  builtin: BuiltinText;
  /** Kept while the demo text is chosen, so switching back restores it. */
  path: string;
}

/** A response together with the request it answered: stale answers are recognised by their key. */
export interface Keyed<T> {
  key: string;
  value: T;
}

/** A job the wizard follows: its events, and its result once done. */
export interface JobTrack<R> {
  jobId: string;
  /** The settings it ran with, as `settingsKey` wrote them. */
  settingsKey: string;
  method: MethodId;
  view: RunView;
  result: R | null;
}

export interface WizardState {
  step: StepId;
  model: { path: string; loadedPath: string | null; card: ModelCard | null };
  data: {
    calib: SourceState;
    eval: SourceState;
    window: string;
    calibWindows: string;
    evalWindows: string;
    seed: string;
    /** Fields the user set: the others follow the model and the texts. */
    touched: { window: boolean; calibWindows: boolean; evalWindows: boolean };
    previews: Record<TextSlot, Keyed<DataPreview> | null>;
    /** The request a text's preview last failed for (its key) and why: the step says so instead of waiting. */
    previewErrors?: Partial<Record<TextSlot, Keyed<string>>>;
  };
  method: {
    method: MethodId;
    /** The target: an error budget, a memory target, or the perplexity increase accepted. */
    mode: TargetMode;
    budget: string;
    /** How much of the original cache to keep: a per cent ("50") or a fraction ("0.5"); see parseKeep. */
    keep: string;
    /** The perplexity increase accepted: a per cent from 1 ("5") or a fraction below 1 ("0.05"); see parsePplIncrease. */
    pplIncrease: string;
    /** What a memory target's allocation minimises (a budget is always layer errors, a perplexity target end to end). */
    objective: Objective;
    keySpace: KeySpaceSetting;
    estimate: Keyed<JobEstimate> | null;
  };
  run: JobTrack<CompressReport> | null;
  review: {
    /** From `reallocate`, once a layer was set by hand or the target moved; null shows the job's own allocation. */
    allocation: Allocation | null;
    overrides: RankOverride[];
    /** The memory target the review's slider set (a fraction); null keeps the job's own target. */
    kvFraction: number | null;
    compare: JobTrack<CompressReport> | null;
  };
  /**
   * Above this perplexity increase, in per cent (as typed), the review and the export warn; kept across
   * jobs, since it says what the user can tolerate rather than anything about one job.
   */
  warnAbove: string;
  export: { path: string; onnx: boolean; force: boolean; job: JobTrack<ReportData> | null };
}

export const DEFAULT_WINDOW = 512;
export const DEFAULT_CALIB_WINDOWS = 32;
export const DEFAULT_EVAL_WINDOWS = 16;
/** The perplexity target's starting value, per cent. */
export const DEFAULT_PPL_INCREASE = 5;
/** The engine's default for a memory target (main/jobs/stages/objective.ts): left out of the settings. */
export const DEFAULT_OBJECTIVE: Objective = 'e2e';
/** Perplexity increase, per cent, past which a result is flagged. */
export const DEFAULT_WARN_ABOVE = 10;

export function initialState(): WizardState {
  return {
    step: 'model',
    model: { path: '', loadedPath: null, card: null },
    data: {
      calib: { mode: 'demo', builtin: 'demo-calibration', path: '' },
      eval: { mode: 'demo', builtin: 'demo-evaluation', path: '' },
      window: String(DEFAULT_WINDOW),
      calibWindows: String(DEFAULT_CALIB_WINDOWS),
      evalWindows: String(DEFAULT_EVAL_WINDOWS),
      seed: '0',
      touched: { window: false, calibWindows: false, evalWindows: false },
      previews: { calib: null, eval: null },
    },
    method: {
      method: 'kqsvd',
      mode: 'budget',
      budget: '0.05',
      keep: '50',
      pplIncrease: String(DEFAULT_PPL_INCREASE),
      objective: DEFAULT_OBJECTIVE,
      keySpace: 'auto',
      estimate: null,
    },
    run: null,
    review: { allocation: null, overrides: [], kvFraction: null, compare: null },
    export: { path: '', onnx: true, force: false, job: null },
    warnAbove: String(DEFAULT_WARN_ABOVE),
  };
}

export type JobSlot = 'run' | 'compare' | 'export';

export type WizardAction =
  | { type: 'go'; step: StepId }
  | { type: 'modelPath'; path: string }
  | { type: 'modelLoaded'; path: string; card: ModelCard }
  | { type: 'modelFailed' }
  | { type: 'source'; slot: TextSlot; patch: Partial<SourceState> }
  | { type: 'dataField'; field: 'window' | 'calibWindows' | 'evalWindows' | 'seed'; value: string }
  | { type: 'previewLoaded'; slot: TextSlot; key: string; preview: DataPreview }
  | { type: 'previewFailed'; slot: TextSlot; key: string; message: string }
  | { type: 'methodField'; patch: Partial<Omit<WizardState['method'], 'estimate'>> }
  | { type: 'estimateLoaded'; key: string; estimate: JobEstimate }
  | { type: 'jobStarted'; slot: JobSlot; summary: JobSummary; settingsKey: string; method: MethodId }
  | { type: 'jobEvent'; slot: JobSlot; event: JobEvent }
  | { type: 'jobResult'; slot: 'run' | 'compare'; jobId: string; result: CompressReport }
  | { type: 'exportResult'; jobId: string; report: ReportData }
  /** The job finished but its result could not be fetched. */
  | { type: 'jobError'; slot: JobSlot; jobId: string; error: ErrorInfo }
  | {
      type: 'allocation';
      allocation: Allocation | null;
      overrides: RankOverride[];
      /** The slider's memory target; left out, the one already set stays. */
      kvFraction?: number | null;
    }
  | { type: 'warnAbove'; value: string }
  | { type: 'exportField'; patch: Partial<Omit<WizardState['export'], 'job'>> }
  | { type: 'openJob'; state: WizardState };

function clampWindows(requested: number, available: number, min: number): string {
  return String(Math.max(min, Math.min(requested, available)));
}

type AnyTrack = JobTrack<CompressReport> | JobTrack<ReportData>;

/** Applies `update` to the job in `slot` when it is the job `jobId`; otherwise the state is unchanged. */
function updateTrack(
  state: WizardState,
  slot: JobSlot,
  jobId: string,
  update: <T extends AnyTrack>(track: T) => T,
): WizardState {
  if (slot === 'run') {
    return state.run?.jobId === jobId ? { ...state, run: update(state.run) } : state;
  }
  if (slot === 'compare') {
    const compare = state.review.compare;
    return compare?.jobId === jobId
      ? { ...state, review: { ...state.review, compare: update(compare) } }
      : state;
  }
  const job = state.export.job;
  return job?.jobId === jobId ? { ...state, export: { ...state.export, job: update(job) } } : state;
}

export function wizardReducer(state: WizardState, action: WizardAction): WizardState {
  switch (action.type) {
    case 'go':
      return { ...state, step: action.step };
    case 'modelPath':
      return { ...state, model: { ...state.model, path: action.path } };
    case 'modelLoaded': {
      const data = { ...state.data };
      // a window longer than the model's context would be refused by the engine
      if (!data.touched.window) data.window = String(Math.min(DEFAULT_WINDOW, action.card.maxPositions));
      return { ...state, model: { path: action.path, loadedPath: action.path, card: action.card }, data };
    }
    case 'modelFailed':
      return { ...state, model: { ...state.model, loadedPath: null, card: null } };
    case 'source':
      return {
        ...state,
        data: { ...state.data, [action.slot]: { ...state.data[action.slot], ...action.patch } },
      };
    case 'dataField': {
      const touched =
        action.field === 'seed' ? state.data.touched : { ...state.data.touched, [action.field]: true };
      return { ...state, data: { ...state.data, [action.field]: action.value, touched } };
    }
    case 'previewFailed': {
      const previewErrors = {
        ...state.data.previewErrors,
        [action.slot]: { key: action.key, value: action.message },
      };
      return { ...state, data: { ...state.data, previewErrors } };
    }
    case 'previewLoaded': {
      const data = { ...state.data, previews: { ...state.data.previews } };
      if (data.previewErrors?.[action.slot]) {
        data.previewErrors = { ...data.previewErrors };
        delete data.previewErrors[action.slot];
      }
      data.previews[action.slot] = { key: action.key, value: action.preview };
      // untouched counts follow the text: as many windows as it gives, up to the default
      const available = action.preview.windows;
      if (action.slot === 'calib' && !data.touched.calibWindows)
        data.calibWindows = clampWindows(DEFAULT_CALIB_WINDOWS, available, 2);
      if (action.slot === 'eval' && !data.touched.evalWindows)
        data.evalWindows = clampWindows(DEFAULT_EVAL_WINDOWS, available, 1);
      return { ...state, data };
    }
    case 'methodField':
      return { ...state, method: { ...state.method, ...action.patch } };
    case 'estimateLoaded':
      return { ...state, method: { ...state.method, estimate: { key: action.key, value: action.estimate } } };
    case 'jobStarted': {
      const base = {
        jobId: action.summary.id,
        settingsKey: action.settingsKey,
        method: action.method,
        view: { ...EMPTY_RUN_VIEW, state: action.summary.state },
        result: null,
      };
      if (action.slot === 'run') {
        // a new run makes the old review, comparison and export meaningless
        return {
          ...state,
          run: base,
          review: { allocation: null, overrides: [], kvFraction: null, compare: null },
          export: { ...state.export, job: null },
        };
      }
      if (action.slot === 'compare') return { ...state, review: { ...state.review, compare: base } };
      return { ...state, export: { ...state.export, job: base } };
    }
    case 'jobEvent':
      return updateTrack(state, action.slot, action.event.jobId, (t) => ({
        ...t,
        view: applyJobEvent(t.view, action.event),
      }));
    case 'jobResult':
      return updateTrack(state, action.slot, action.jobId, (t) => ({ ...t, result: action.result }));
    case 'exportResult':
      return updateTrack(state, 'export', action.jobId, (t) => ({ ...t, result: action.report }));
    case 'jobError':
      return updateTrack(state, action.slot, action.jobId, (t) => ({
        ...t,
        view: { ...t.view, error: action.error },
      }));
    case 'allocation':
      return {
        ...state,
        review: {
          ...state.review,
          allocation: action.allocation,
          overrides: action.overrides,
          kvFraction: action.kvFraction === undefined ? state.review.kvFraction : action.kvFraction,
        },
      };
    case 'warnAbove':
      return { ...state, warnAbove: action.value };
    case 'exportField':
      return { ...state, export: { ...state.export, ...action.patch } };
    case 'openJob':
      // the threshold is the user's, not the job's
      return { ...action.state, warnAbove: state.warnAbove };
  }
}
