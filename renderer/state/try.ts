/**
 * A Try-it run as the panel shows it: the two streams token by token (so the compressed column can be
 * split where it first departs from the original), each side's live speed and cache size, and the result
 * once the run is over. Pure, like the wizard's reducer; plus the parsing of the sampling fields.
 */
import type {
  ErrorInfo,
  JobEvent,
  JobState,
  TryPromptResult,
  TryRequest,
  TryResult,
  TrySide,
} from '../../main/contract/index.ts';
import { parseDecimal, parseWhole } from './settings.ts';

export interface TryToken {
  id: number;
  text: string;
}

export interface TrySideView {
  /** Indexed by the token's index in the generation. */
  tokens: TryToken[];
  tokensPerSecond: number | null;
  kvCacheBytes: number | null;
}

export interface TryView {
  runId: string | null;
  /** The prompt the run was started with (the box may have changed since). */
  prompt: string;
  state: JobState | null;
  error: ErrorInfo | null;
  model: TrySideView;
  compare: TrySideView;
  /** The first index where both sides have a token and the two differ, as the tokens arrive. */
  liveDivergence: number | null;
  result: TryPromptResult | null;
}

const EMPTY_SIDE: TrySideView = { tokens: [], tokensPerSecond: null, kvCacheBytes: null };

export const EMPTY_TRY_VIEW: TryView = {
  runId: null,
  prompt: '',
  state: null,
  error: null,
  model: EMPTY_SIDE,
  compare: EMPTY_SIDE,
  liveDivergence: null,
  result: null,
};

export type TryAction =
  /** The run was started (or starting it was refused: then `error`). */
  | { type: 'started'; runId: string; prompt: string; state: JobState }
  | { type: 'event'; event: JobEvent }
  | { type: 'result'; runId: string; result: TryResult }
  /** The run ended but its result could not be fetched. */
  | { type: 'resultError'; runId: string; error: ErrorInfo };

const other = (side: TrySide): TrySide => (side === 'model' ? 'compare' : 'model');

export function tryReducer(view: TryView, action: TryAction): TryView {
  switch (action.type) {
    case 'started':
      return { ...EMPTY_TRY_VIEW, runId: action.runId, prompt: action.prompt, state: action.state };
    case 'event': {
      const e = action.event;
      if (e.jobId !== view.runId) return view;
      if (e.type === 'state') return { ...view, state: e.state, error: e.error ?? null };
      if (e.type !== 'token' || e.prompt !== 0) return view;
      const side = view[e.side];
      const tokens = side.tokens.slice();
      tokens[e.index] = { id: e.id, text: e.text };
      let liveDivergence = view.liveDivergence;
      const theirs = view[other(e.side)].tokens[e.index];
      // each side's tokens arrive in order, so the first pair found to differ is the earliest
      if (liveDivergence === null && theirs !== undefined && theirs.id !== e.id) liveDivergence = e.index;
      return {
        ...view,
        // a token means the run is going, even if its 'running' event was missed
        state: view.state === null || view.state === 'queued' ? 'running' : view.state,
        [e.side]: { tokens, tokensPerSecond: e.tokensPerSecond, kvCacheBytes: e.kvCacheBytes },
        liveDivergence,
      };
    }
    case 'result':
      return action.runId === view.runId ? { ...view, result: action.result.prompts[0] ?? null } : view;
    case 'resultError':
      return action.runId === view.runId ? { ...view, error: action.error } : view;
  }
}

export function tryActive(view: TryView): boolean {
  return view.state === 'queued' || view.state === 'running';
}

/**
 * Where the compressed text departs from the original's: the comparison's once the result is in (it also
 * counts one text ending before the other), else what the streams have shown so far.
 */
export function divergenceOf(view: TryView): number | null {
  const c = view.result?.comparison;
  return c ? c.firstDivergence : view.liveDivergence;
}

/** A side's generated text, split at token `at` (null: not split). */
export function splitText(side: TrySideView, at: number | null): { before: string; after: string } {
  const texts = Array.from(side.tokens, (t) => t?.text ?? '');
  if (at === null || at >= texts.length) return { before: texts.join(''), after: '' };
  return { before: texts.slice(0, at).join(''), after: texts.slice(at).join('') };
}

/**
 * The text a column shows: the streamed tokens, or the result's text where the stream missed some (a
 * subscription that came late) — then unsplit, since the token boundaries are not known.
 */
export function columnText(view: TryView, side: TrySide): { before: string; after: string } {
  const stream = view[side];
  const done = view.result?.[side];
  const complete = stream.tokens.filter((t) => t !== undefined).length;
  if (done && complete < done.ids.length) return { before: done.text, after: '' };
  return splitText(stream, side === 'model' ? divergenceOf(view) : null);
}

/** The sampling fields as typed: empty means the engine's default (greedy, 128 new tokens). */
export interface TrySamplingFields {
  maxNewTokens: string;
  temperature: string;
  topK: string;
  topP: string;
  seed: string;
}

export const EMPTY_SAMPLING: TrySamplingFields = {
  maxNewTokens: '',
  temperature: '',
  topK: '',
  topP: '',
  seed: '',
};

export type SamplingRequest = Pick<TryRequest, 'maxNewTokens' | 'temperature' | 'topK' | 'topP' | 'seed'>;

/** The request's sampling part, and what is wrong with each field that cannot be sent. */
export function samplingOf(f: TrySamplingFields): {
  request: SamplingRequest;
  errors: Partial<Record<keyof TrySamplingFields, string>>;
} {
  const request: SamplingRequest = {};
  const errors: Partial<Record<keyof TrySamplingFields, string>> = {};
  const set = (
    key: keyof TrySamplingFields,
    parse: (t: string) => number,
    ok: (n: number) => boolean,
    message: string,
  ) => {
    if (f[key].trim() === '') return;
    const n = parse(f[key]);
    if (ok(n)) request[key] = n;
    else errors[key] = message;
  };
  set('maxNewTokens', parseWhole, (n) => n >= 1 && n <= 1_000_000, 'A whole number from 1');
  set('temperature', parseDecimal, (n) => n >= 0 && n <= 100, 'From 0 (greedy) to 100');
  set('topK', parseWhole, (n) => n >= 0, 'A whole number (0: all)');
  set('topP', parseDecimal, (n) => n > 0 && n <= 1, 'Above 0, at most 1');
  set('seed', parseWhole, (n) => Number.isSafeInteger(n), 'A whole number');
  return { request, errors };
}
