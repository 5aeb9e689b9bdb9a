// @vitest-environment jsdom
/**
 * Try it in review and export, against the fake API's scripted run: the prompt comes from the
 * calibration text, both columns stream, the compressed one is highlighted from where it departs from
 * the original, Stop cancels the run, and refused or failed runs show the engine's error. Also the pure
 * state behind the panel (renderer/state/try.ts).
 */
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobEvent, TryRequest, TryResult } from '../../main/contract/index.ts';
import { App } from '../../renderer/app/App.tsx';
import { formatBytes } from '../../main/core/format.ts';
import {
  columnText,
  divergenceOf,
  EMPTY_SAMPLING,
  EMPTY_TRY_VIEW,
  samplingOf,
  splitText,
  tryReducer,
  type TryView,
} from '../../renderer/state/try.ts';
import { wizardReducer, type WizardState } from '../../renderer/state/wizard.ts';
import {
  CARD,
  CHOSEN,
  fakeApi,
  TRY_DIVERGENCE,
  TRY_TOKENS,
  tryResult,
  tryTokenEvents,
  type FakeApi,
} from './fake-api.ts';
import { doneState } from './states.ts';

afterEach(cleanup);

const SUGGESTIONS = ['Once upon a time there was', 'The little dog ran'];

/** The finished job of doneState, with the calibration preview's prompt suggestions. */
function withSuggestions(s: WizardState): WizardState {
  const calib = s.data.previews.calib!;
  return {
    ...s,
    data: {
      ...s.data,
      previews: {
        ...s.data.previews,
        calib: { ...calib, value: { ...calib.value, promptSuggestions: SUGGESTIONS } },
      },
    },
  };
}

const prompt = () => screen.getByTestId('try-prompt').querySelector('textarea')!;
const generate = () => screen.getByTestId('try-generate') as HTMLButtonElement;
const streamText = (side: 'model' | 'compare') => screen.getByTestId(`try-stream-${side}`).textContent;

/** Presses Generate and waits until the panel follows the run it started. */
async function startRun(api: FakeApi): Promise<string> {
  const calls = api.startTry.mock.calls.length;
  fireEvent.click(generate());
  await waitFor(() => expect(api.startTry).toHaveBeenCalledTimes(calls + 1));
  const id = (await api.startTry.mock.results[calls].value).id;
  await waitFor(() => expect(api.subscribe).toHaveBeenCalledWith(id, expect.any(Function)));
  return id;
}

const join = (side: 'model' | 'compare', from = 0, to = TRY_TOKENS[side].length) =>
  TRY_TOKENS[side]
    .slice(from, to)
    .map((t) => t.text)
    .join('');

describe('Try it in the review step', () => {
  it('prefills the prompt with the first suggestion from the calibration text; a chip replaces it', () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={withSuggestions(doneState(api))} />);
    const panel = screen.getByTestId('try-panel');
    expect(prompt().value).toBe(SUGGESTIONS[0]);
    const chips = within(panel).getAllByTestId('try-suggestion');
    expect(chips.map((c) => c.textContent)).toEqual(SUGGESTIONS);
    fireEvent.click(chips[1]);
    expect(prompt().value).toBe(SUGGESTIONS[1]);
    fireEvent.change(prompt(), { target: { value: '' } });
    expect(generate().disabled).toBe(true);
    // nothing runs until Generate is pressed
    expect(api.startTry).not.toHaveBeenCalled();
    expect(screen.queryByTestId('try-stats')).toBeNull();
  });

  it('asks for the calibration preview when the wizard has none (a job opened from the list)', async () => {
    const api = fakeApi();
    const s = doneState(api);
    render(
      <App
        api={api}
        mode="browser"
        initial={{ ...s, data: { ...s.data, previews: { calib: null, eval: null } } }}
      />,
    );
    expect(screen.queryByTestId('try-suggestion')).toBeNull();
    await waitFor(() => expect(screen.getAllByTestId('try-suggestion')).toHaveLength(2));
    expect(api.previewData).toHaveBeenCalledWith(expect.objectContaining({ model: CARD.dir }));
    expect(prompt().value).toBe(SUGGESTIONS[0]);
  });

  it('streams both columns side by side, highlights where they part, and shows the comparison after', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={withSuggestions(doneState(api))} />);
    const id = await startRun(api);
    // the job's model as reviewed (nothing edited: its own ranks) beside the original folder
    expect(api.startTry).toHaveBeenCalledWith({
      model: { jobId: 'job-1' },
      compare: { dir: CARD.dir },
      prompt: SUGGESTIONS[0],
    });
    expect(screen.getByTestId('try-stats').dataset.state).toBe('queued');
    expect(screen.queryByTestId('try-divergence')).toBeNull();

    act(() => {
      api.emit(id, { type: 'state', state: 'running' });
      for (const e of tryTokenEvents(0, 3)) api.emit(id, e);
    });
    expect(screen.getByTestId('try-stats').dataset.state).toBe('running');
    expect(streamText('model')).toBe(SUGGESTIONS[0] + join('model', 0, 3));
    expect(streamText('compare')).toBe(SUGGESTIONS[0] + join('compare', 0, 3));
    expect(screen.queryByTestId('try-divergence')).toBeNull();
    expect(screen.getByTestId('try-speed-model').textContent).toMatch(/52\.0 tokens\/s/);
    expect(screen.getByTestId('try-speed-model').textContent).toMatch(formatBytes(1000 * 6));
    expect(screen.getByTestId('try-speed-compare').textContent).toMatch(/42\.0 tokens\/s/);
    expect(screen.getByTestId('try-speed-compare').textContent).toMatch(formatBytes(2048 * 6));
    expect(screen.getByTestId('try-stop')).toBeTruthy();
    expect(generate().disabled).toBe(true);

    // the compressed model's token 3 arrives first: nothing to compare it with yet
    const [model3, compare3, ...rest] = tryTokenEvents(TRY_DIVERGENCE);
    act(() => api.emit(id, model3));
    expect(screen.queryByTestId('try-divergence')).toBeNull();
    act(() => api.emit(id, compare3));
    expect(screen.getByTestId('try-divergence').textContent).toBe(TRY_TOKENS.model[TRY_DIVERGENCE].text);
    act(() => {
      for (const e of rest) api.emit(id, e);
    });
    const mark = screen.getByTestId('try-divergence');
    expect(mark.textContent).toBe(join('model', TRY_DIVERGENCE));
    expect(mark.dataset.index).toBe(String(TRY_DIVERGENCE));
    expect(within(screen.getByTestId('try-stream-model')).getAllByTestId('try-divergence')).toHaveLength(1);
    expect(streamText('compare')).toBe(SUGGESTIONS[0] + join('compare'));

    act(() => api.emit(id, { type: 'state', state: 'done' }));
    await waitFor(() => expect(screen.getByTestId('try-stats').dataset.state).toBe('done'));
    expect(api.getTryResult).toHaveBeenCalledWith(id);
    expect(screen.getByTestId('try-identical').textContent).toBe('67 %');
    expect(screen.getByTestId('try-kl').textContent).toBe('0.042');
    expect(screen.getByTestId('try-stats').textContent).toMatch(/part at token 4/);
    expect(screen.getByTestId('try-stats').textContent).toMatch(/token limit/);
    expect(screen.getByTestId('try-divergence').textContent).toBe(join('model', TRY_DIVERGENCE));
    expect(screen.queryByTestId('try-stop')).toBeNull();
    expect(generate().disabled).toBe(false);
  });

  it('runs the allocation as edited in review, with the sampling settings behind More', async () => {
    const api = fakeApi();
    const state = doneState(api);
    const allocation = await api.reallocate({
      jobId: 'job-1',
      overrides: [{ layer: 2, kRank: 32, vRank: 32 }],
    });
    render(
      <App
        api={api}
        mode="browser"
        initial={{
          ...state,
          review: { ...state.review, allocation, overrides: [{ layer: 2, kRank: 32, vRank: 32 }] },
        }}
      />,
    );
    // no suggestions in this state: the box starts empty
    expect(prompt().value).toBe('');
    fireEvent.change(prompt(), { target: { value: 'A dragon' } });
    expect(screen.queryByTestId('try-max-new-tokens')).toBeNull();
    fireEvent.click(screen.getByTestId('try-more'));
    const max = await screen.findByTestId('try-max-new-tokens');
    fireEvent.change(max.querySelector('input')!, { target: { value: '16' } });
    fireEvent.change(screen.getByLabelText('Temperature'), { target: { value: '0.7' } });
    fireEvent.change(screen.getByLabelText('Top-p'), { target: { value: '1.5' } });
    expect(generate().disabled).toBe(true);
    expect(screen.getByTestId('try-panel').textContent).toMatch(/Above 0, at most 1/);
    fireEvent.change(screen.getByLabelText('Top-p'), { target: { value: '0.9' } });
    fireEvent.change(screen.getByLabelText('Seed'), { target: { value: '7' } });
    await startRun(api);
    expect(api.startTry).toHaveBeenCalledWith({
      model: {
        jobId: 'job-1',
        ranks: CHOSEN.map((c, layer) =>
          layer === 2 ? { layer, kRank: 32, vRank: 32 } : { layer, kRank: c.k, vRank: c.v },
        ),
      },
      compare: { dir: CARD.dir },
      prompt: 'A dragon',
      maxNewTokens: 16,
      temperature: 0.7,
      topP: 0.9,
      seed: 7,
    });
  });

  it('Stop cancels the run, which ends with what it generated', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={withSuggestions(doneState(api))} />);
    const id = await startRun(api);
    act(() => {
      api.emit(id, { type: 'state', state: 'running' });
      for (const e of tryTokenEvents(0, 2)) api.emit(id, e);
    });
    fireEvent.click(screen.getByTestId('try-stop'));
    await waitFor(() => expect(api.cancelJob).toHaveBeenCalledWith(id));
    act(() => api.emit(id, { type: 'state', state: 'done' }));
    await waitFor(() => expect(screen.getByTestId('try-stats').dataset.state).toBe('done'));
    const stats = screen.getByTestId('try-stats').textContent;
    expect(stats).toMatch(/Stopped before the end/);
    expect(stats).toMatch(/stopped/);
    expect(screen.queryByTestId('try-identical')).toBeNull();
    expect(streamText('model')).toBe(SUGGESTIONS[0] + join('model', 0, 2));
    expect(screen.queryByTestId('engine-error')).toBeNull();
  });

  it('stops a run that is still going when the step is left', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={withSuggestions(doneState(api))} />);
    const id = await startRun(api);
    act(() => api.emit(id, { type: 'state', state: 'running' }));
    fireEvent.click(screen.getByTestId('next'));
    await screen.findByTestId('step-export');
    await waitFor(() => expect(api.cancelJob).toHaveBeenCalledWith(id));
  });

  it('shows a refused request and a failed run as engine errors', async () => {
    const api = fakeApi();
    api.startTry.mockRejectedValueOnce(
      Object.assign(new Error('refused'), {
        info: {
          kind: 'bad-input',
          message: 'the prompt is empty; type a beginning for the model to continue',
        },
      }),
    );
    render(<App api={api} mode="browser" initial={withSuggestions(doneState(api))} />);
    fireEvent.click(generate());
    const refused = await screen.findByTestId('engine-error');
    expect(refused.dataset.kind).toBe('bad-input');
    expect(refused.textContent).toMatch(/the prompt is empty/);
    expect(refused.textContent).toMatch(/What to do/);

    // a prompt longer than the context: the run starts, then fails
    const id = await startRun(api);
    await waitFor(() => expect(screen.queryByTestId('engine-error')).toBeNull());
    act(() =>
      api.emit(id, {
        type: 'state',
        state: 'failed',
        error: {
          kind: 'bad-input',
          message: "the prompt is 2000 tokens, and the model's context is 1024: shorten it",
        },
      }),
    );
    const failed = screen.getByTestId('engine-error');
    expect(failed.textContent).toMatch(/2000 tokens/);
    expect(screen.getByTestId('try-stats').dataset.state).toBe('failed');
    expect(api.getTryResult).not.toHaveBeenCalled();
    expect(generate().disabled).toBe(false);
  });
});

describe('Try it in the export step', () => {
  it('appears once the export is done and runs the exported folder beside the original', async () => {
    const api = fakeApi();
    // the fake's export report names this folder
    const out = '/out/tiny-llama-kqsvd';
    let state = withSuggestions(doneState(api, 'export'));
    const summary = await api.exportJob({ jobId: 'job-1', out });
    state = wizardReducer(state, {
      type: 'jobStarted',
      slot: 'export',
      summary: { ...summary, state: 'done' },
      settingsKey: state.run!.settingsKey,
      method: 'kqsvd',
    });
    api.seed(summary.id, 'done', summary.settings);
    render(<App api={api} mode="browser" initial={state} />);
    await screen.findByTestId('export-result');
    expect(api.getExportReport).toHaveBeenCalled();
    const id = await startRun(api);
    expect(api.startTry).toHaveBeenCalledWith({
      model: { dir: out },
      compare: { dir: CARD.dir },
      prompt: SUGGESTIONS[0],
    });
    act(() => {
      for (const e of tryTokenEvents()) api.emit(id, e);
      api.emit(id, { type: 'state', state: 'done' });
    });
    await waitFor(() => expect(screen.getByTestId('try-stats').dataset.state).toBe('done'));
    expect(streamText('compare')).toBe(SUGGESTIONS[0] + join('compare'));
  });
});

describe('the Try-it state', () => {
  const event = (e: Record<string, unknown>) => ({ jobId: 'r', seq: 0, ...e }) as JobEvent;
  const tokens = (from?: number, to?: number) => tryTokenEvents(from, to).map((e) => event(e));
  const started = tryReducer(EMPTY_TRY_VIEW, { type: 'started', runId: 'r', prompt: 'P', state: 'queued' });
  const request = { model: { dir: '/m' }, prompt: 'P' } as TryRequest;

  it('collects each side’s tokens and finds the first index where both have one and they differ', () => {
    let v: TryView = started;
    for (const e of tokens(0, 3)) v = tryReducer(v, { type: 'event', event: e });
    expect(v.state).toBe('running');
    expect(v.liveDivergence).toBeNull();
    expect(v.model.tokensPerSecond).toBe(52);
    expect(v.compare.kvCacheBytes).toBe(2048 * 6);
    for (const e of tokens(3)) v = tryReducer(v, { type: 'event', event: e });
    expect(v.liveDivergence).toBe(TRY_DIVERGENCE);
    expect(divergenceOf(v)).toBe(TRY_DIVERGENCE);
    expect(columnText(v, 'model')).toEqual({ before: join('model', 0, 3), after: join('model', 3) });
    expect(columnText(v, 'compare')).toEqual({ before: join('compare'), after: '' });
    // another run's events are not this one's
    const other = tryReducer(v, { type: 'event', event: { ...tokens(0, 1)[0], jobId: 'x' } as JobEvent });
    expect(other).toBe(v);
  });

  it('takes the comparison’s divergence once the result is in, and the result’s text where tokens were missed', () => {
    let v: TryView = started;
    for (const e of tokens(0, 2)) v = tryReducer(v, { type: 'event', event: e });
    const result: TryResult = tryResult(request);
    v = tryReducer(v, { type: 'result', runId: 'r', result });
    expect(divergenceOf(v)).toBe(TRY_DIVERGENCE);
    expect(columnText(v, 'model')).toEqual({ before: join('model'), after: '' });
    const identical: TryResult = {
      prompts: [
        { ...result.prompts[0], comparison: { ...result.prompts[0].comparison!, firstDivergence: null } },
      ],
    };
    expect(divergenceOf(tryReducer(started, { type: 'result', runId: 'r', result: identical }))).toBeNull();
    expect(tryReducer(v, { type: 'result', runId: 'other', result })).toBe(v);
  });

  it('splits a side at a token, holes and all', () => {
    const side = {
      tokens: [
        { id: 1, text: 'a' },
        { id: 2, text: '' },
        { id: 3, text: 'bc' },
      ],
      tokensPerSecond: null,
      kvCacheBytes: null,
    };
    expect(splitText(side, 2)).toEqual({ before: 'a', after: 'bc' });
    expect(splitText(side, null)).toEqual({ before: 'abc', after: '' });
    expect(splitText(side, 5)).toEqual({ before: 'abc', after: '' });
  });

  it('reads the sampling fields: empty is the default, bad values are named', () => {
    expect(samplingOf(EMPTY_SAMPLING)).toEqual({ request: {}, errors: {} });
    expect(
      samplingOf({ maxNewTokens: '32', temperature: '0.8', topK: '40', topP: '.95', seed: '3' }).request,
    ).toEqual({ maxNewTokens: 32, temperature: 0.8, topK: 40, topP: 0.95, seed: 3 });
    const bad = samplingOf({ maxNewTokens: '0', temperature: '-1', topK: '2.5', topP: '0', seed: 'x' });
    expect(bad.request).toEqual({});
    expect(Object.keys(bad.errors).sort()).toEqual(['maxNewTokens', 'seed', 'temperature', 'topK', 'topP']);
  });
});
