/**
 * What a job's event stream adds up to, for the run and export views: its state, where it is, and the
 * error-rank profiles that have arrived so far (the live curves).
 */
import type {
  CompressReport,
  ErrorInfo,
  JobEvent,
  JobState,
  ProfilePoint,
} from '../../main/contract/index.ts';

export type ProgressEvent = Extract<JobEvent, { type: 'progress' }>;

export interface LayerProfileView {
  layer: number;
  keySpace: string;
  points: ProfilePoint[];
  /** Loaded from the job cache (a resumed or repeated job) rather than measured now. */
  cached: boolean;
}

export interface RunView {
  state: JobState | null;
  error: ErrorInfo | null;
  progress: ProgressEvent | null;
  /** Indexed by layer; holes for layers not profiled yet. */
  profiles: (LayerProfileView | undefined)[];
  /** Stages in the order they first reported progress. */
  stages: string[];
  logs: string[];
}

const MAX_LOGS = 200;

export const EMPTY_RUN_VIEW: RunView = {
  state: null,
  error: null,
  progress: null,
  profiles: [],
  stages: [],
  logs: [],
};

export function isActive(state: JobState | null): boolean {
  return state === 'queued' || state === 'running';
}

export function isFinished(state: JobState | null): boolean {
  return state === 'done' || state === 'failed' || state === 'cancelled';
}

export function applyJobEvent(view: RunView, event: JobEvent): RunView {
  switch (event.type) {
    case 'state': {
      const next: RunView = { ...view, state: event.state, error: event.error ?? null };
      // A resumed job starts over from its first stage; stale progress would show it further on than it is.
      if (event.state === 'queued') next.progress = null;
      if (event.state === 'done') next.progress = null;
      return next;
    }
    case 'progress':
      return {
        ...view,
        // a progress event means the job is running, even if its 'running' state event was missed
        state: view.state === null || view.state === 'queued' ? 'running' : view.state,
        progress: event,
        stages: view.stages.includes(event.stage) ? view.stages : [...view.stages, event.stage],
      };
    case 'profile': {
      const profiles = view.profiles.slice();
      profiles[event.layer] = {
        layer: event.layer,
        keySpace: event.keySpace,
        points: event.points,
        cached: event.cached,
      };
      return { ...view, profiles };
    }
    case 'log':
      return { ...view, logs: [...view.logs, event.message].slice(-MAX_LOGS) };
    case 'token':
      // Try-it runs stream tokens; a compress or export job's view has nothing to show for them
      return view;
  }
}

/** The finished job's profiles in the same form as the live ones. */
export function profilesFromReport(report: CompressReport): LayerProfileView[] {
  return (report.profile ?? []).map((points, layer) => ({
    layer,
    keySpace: report.layers[layer]?.keySpace ?? String(report.keySpace),
    points: points.map((p) => ({ kRank: p.kRank, vRank: p.vRank, error: p.error })),
    cached: false,
  }));
}

/** Layers whose profile has arrived: the run view's per-layer progress. */
export function layersProfiled(view: RunView): number {
  return view.profiles.filter((p) => p !== undefined).length;
}
