// @vitest-environment jsdom
/**
 * The end-to-end objective in the wizard: the method step's perplexity target and memory objective, and the
 * review's re-allocation over the job's measured layer effects, with the perplexities it predicts.
 */
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { CompressReport, LayerEffectReport } from '../../main/contract/index.ts';
import { reallocateProfiles } from '../../main/core/allocate/index.ts';
import { App } from '../../renderer/app/App.tsx';
import { profilesFromReport } from '../../renderer/state/run.ts';
import { cacheShape, jobTarget, reallocationInput } from '../../renderer/steps/ReviewStep.tsx';
import { CARD, compressReport, fakeApi, type FakeApi } from './fake-api.ts';
import { doneState, readyState } from './states.ts';

afterEach(cleanup);

const input = (id: string) => screen.getByTestId(id).querySelector('input')!;
const shownRanks = () =>
  screen.getAllByTestId('layer-group').map((g) => [Number(g.dataset.kRank), Number(g.dataset.vRank)]);

/** Every layer equally sensitive to its output error but the last, which moves the NLL twenty times as much. */
const SENSITIVITY = [1, 1, 1, 20];
const PROBED = [8, 16, 24];

/** Probes on the fake profile's diagonal, whose effect is the layer's error times its sensitivity. */
function effectsOf(report: CompressReport): LayerEffectReport[] {
  return report.profile!.map((points, layer) => ({
    layer,
    probes: PROBED.map((r) => {
      const error = points.find((p) => p.kRank === r && p.vRank === r)!.error;
      return { kRank: r, vRank: r, error, effect: 0.1 * SENSITIVITY[layer] * error };
    }),
  }));
}

function setup(report: CompressReport) {
  const profiles = profilesFromReport(report).map((p) => ({ layer: p.layer, points: p.points }));
  return { profiles, shape: cacheShape(report, CARD) };
}

/** A report as an end-to-end job writes it: its effects, and the perplexity its allocation predicts. */
function e2eReport(): CompressReport {
  const report = compressReport();
  return {
    ...report,
    objective: 'e2e',
    effects: effectsOf(report),
    predicted: { nllIncrease: 0.02, perplexity: 20 * Math.exp(0.02) },
  };
}

describe('the method step’s targets', () => {
  it('offers a perplexity target, explains it and sends it as maxPplIncrease', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={readyState('method')} />);
    expect(screen.queryByTestId('ppl-input')).toBeNull();
    fireEvent.click(screen.getByTestId('mode-perplexity'));
    expect(screen.getByTestId('step-method').textContent).toMatch(
      /smallest cache whose perplexity is predicted to rise by at most this much, from probes of each layer’s effect/,
    );
    expect(input('ppl-input').value).toBe('5');
    fireEvent.change(input('ppl-input'), { target: { value: '12.5' } });
    expect(screen.getByTestId('ppl-input').textContent).toMatch(/perplexity up to \+12\.5 %/);
    await waitFor(() =>
      expect(api.estimate).toHaveBeenLastCalledWith(expect.objectContaining({ maxPplIncrease: 0.125 })),
    );
    const sent = api.estimate.mock.lastCall![0];
    expect(sent).not.toHaveProperty('budget');
    expect(sent).not.toHaveProperty('kvFraction');
    expect(sent).not.toHaveProperty('objective');

    // out of range: the field says what it takes, and Next is refused with the issue
    fireEvent.change(input('ppl-input'), { target: { value: '2000' } });
    expect(screen.getByTestId('ppl-input').textContent).toMatch(/5 or 0\.05/);
    expect(input('ppl-input').getAttribute('aria-invalid')).toBe('true');
    expect((screen.getByTestId('next') as HTMLButtonElement).disabled).toBe(true);
  });

  it('chooses a memory target’s objective, sending it only when it is not the default', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={readyState('method')} />);
    // the choice belongs to the memory target alone
    expect(screen.queryByTestId('objective-layer')).toBeNull();
    fireEvent.click(screen.getByTestId('mode-memory'));
    expect(screen.getByTestId('objective-e2e').getAttribute('aria-pressed')).toBe('true');
    fireEvent.click(screen.getByTestId('objective-layer'));
    expect(screen.getByTestId('objective-layer').getAttribute('aria-pressed')).toBe('true');
    await waitFor(() =>
      expect(api.estimate).toHaveBeenLastCalledWith(
        expect.objectContaining({ kvFraction: 0.5, objective: 'layer' }),
      ),
    );
    fireEvent.click(screen.getByTestId('objective-e2e'));
    await waitFor(() => expect(api.estimate.mock.lastCall![0]).not.toHaveProperty('objective'));
    expect(api.estimate.mock.lastCall![0]).toMatchObject({ kvFraction: 0.5 });
  });
});

describe('the review of an end-to-end job', () => {
  it('shows the perplexity its allocation was predicted to have beside the measured one', () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={doneState(api, 'review', { result: e2eReport() })} />);
    expect(screen.getByTestId('perplexity-predicted').textContent).toMatch(
      /Predicted perplexity 20\.404 \(measured 20\.500\)/,
    );
    // the job's own allocation: nothing re-allocated to predict
    expect(screen.queryByTestId('perplexity-reallocated')).toBeNull();
  });

  it('says nothing predicted for a job over layer errors', () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={doneState(api)} />);
    expect(screen.getByTestId('perplexity').textContent).toMatch(/20\.000 → 20\.500/);
    expect(screen.queryByTestId('perplexity-predicted')).toBeNull();
    fireEvent.change(within(screen.getByTestId('target-slider')).getByRole('slider'), {
      target: { value: 0.4 },
    });
    expect(screen.queryByTestId('perplexity-reallocated')).toBeNull();
  });

  it('moves the memory target over the job’s effects, not its layer errors, and predicts the perplexity', async () => {
    const api = fakeApi();
    const report = e2eReport();
    const { profiles, shape } = setup(report);
    const byEffects = reallocateProfiles(profiles, shape, { kvFraction: 0.4, effects: report.effects });
    const byErrors = reallocateProfiles(profiles, shape, { kvFraction: 0.4 });
    const ranks = (a: typeof byEffects) => a.layers.map((l) => [l.kRank, l.vRank]);
    // the fixture separates the objectives: the sensitive last layer keeps more by its effect
    expect(ranks(byEffects)).not.toEqual(ranks(byErrors));
    expect(byEffects.layers[3].kRank + byEffects.layers[3].vRank).toBeGreaterThan(
      byErrors.layers[3].kRank + byErrors.layers[3].vRank,
    );

    render(<App api={api} mode="browser" initial={doneState(api, 'review', { result: report })} />);
    fireEvent.change(within(screen.getByTestId('target-slider')).getByRole('slider'), {
      target: { value: 0.4 },
    });
    await waitFor(() => expect(shownRanks()).toEqual(ranks(byEffects)));
    expect(api.reallocate).not.toHaveBeenCalled();
    const predicted = 20 * Math.exp(byEffects.predictedNllIncrease!);
    const change = (predicted / 20 - 1) * 100;
    expect(screen.getByTestId('perplexity-reallocated').textContent).toMatch(
      new RegExp(
        `predicted \\(not measured\\): perplexity ${predicted.toFixed(3)} \\(\\+${change.toFixed(2)} %\\)`,
      ),
    );
  });

  it('re-allocates a budget over layer errors even when the job has effects, as the engine does', () => {
    const report = e2eReport();
    expect(reallocationInput(report, { budget: 0.05 })).toEqual({});
    expect(reallocationInput(report, { kvFraction: 0.5 })).toEqual({ effects: report.effects });
    expect(reallocationInput(report, { maxPplIncrease: 0.05 })).toEqual({ effects: report.effects });
    expect(reallocationInput(compressReport(), { kvFraction: 0.5 })).toEqual({});
    expect(jobTarget(JSON.stringify({ maxPplIncrease: 0.05 }))).toEqual({ maxPplIncrease: 0.05 });
    expect(jobTarget(JSON.stringify({ kvFraction: 0.3 }))).toEqual({ kvFraction: 0.3 });
    expect(jobTarget(JSON.stringify({ budget: 0.1 }))).toEqual({ budget: 0.1 });
  });
});

describe('the review of a perplexity-target job', () => {
  /** A job that asked for at most +5 % perplexity, allocated as the engine would, and an engine to match. */
  function pplJob(api: FakeApi) {
    const base = e2eReport();
    const { profiles, shape } = setup(base);
    const effects = base.effects!;
    const own = reallocateProfiles(profiles, shape, { maxPplIncrease: 0.05, effects });
    const report: CompressReport = {
      ...base,
      layers: own.layers.map((l) => ({ ...l, keySpace: 'pre-rope' })),
      kvBytesPerToken: own.kvBytesPerToken,
      kvFraction: own.kvBytesPerToken.compressed / own.kvBytesPerToken.original,
      allocation: { kind: 'perplexity', target: 0.05, feasible: true, weightedError: own.weightedError },
      predicted: {
        nllIncrease: own.predictedNllIncrease!,
        perplexity: 20 * Math.exp(own.predictedNllIncrease!),
      },
    };
    // the engine's reallocate for this job: its own target unless another is asked for, over its effects
    api.reallocate.mockImplementation(async (req) =>
      reallocateProfiles(profiles, shape, {
        ...(req.kvFraction !== undefined ? { kvFraction: req.kvFraction } : { maxPplIncrease: 0.05 }),
        effects,
        overrides: req.overrides ?? [],
        refit: req.refit,
      }),
    );
    const state = doneState(api, 'review', {
      method: { mode: 'perplexity', pplIncrease: '5' },
      result: report,
    });
    return { state, profiles, shape, effects, own };
  }

  it('keeps the memory slider, and a hand edit past the target offers re-fit to meet it', async () => {
    const api = fakeApi();
    const { state, profiles, shape, effects, own } = pplJob(api);
    expect(state.run!.settingsKey).toMatch(/"maxPplIncrease":0\.05/);
    render(<App api={api} mode="browser" initial={state} />);
    expect(shownRanks()).toEqual(own.layers.map((l) => [l.kRank, l.vRank]));
    expect(screen.getByTestId('target-slider').textContent).toMatch(/the job’s allocation/);

    // layer 3 down to 12/12: predicted past +5 %
    fireEvent.click(screen.getAllByTestId('layer-group')[3]);
    const editor = await screen.findByTestId('layer-editor');
    for (const side of ['edit-k-rank', 'edit-v-rank']) {
      fireEvent.mouseDown(within(within(editor).getByTestId(side)).getByRole('combobox'));
      fireEvent.click(screen.getByRole('option', { name: '12' }));
    }
    fireEvent.click(within(editor).getByTestId('edit-apply'));
    await waitFor(() =>
      expect(api.reallocate).toHaveBeenCalledWith({
        jobId: 'job-1',
        overrides: [{ layer: 3, kRank: 12, vRank: 12 }],
      }),
    );
    const override = { layer: 3, kRank: 12, vRank: 12 };
    const edited = reallocateProfiles(profiles, shape, {
      maxPplIncrease: 0.05,
      effects,
      overrides: [override],
    });
    expect(edited.feasible).toBe(false);
    const editedPpl = 20 * Math.exp(edited.predictedNllIncrease!);
    const infeasible = await screen.findByTestId('infeasible');
    expect(infeasible.textContent).toMatch(
      new RegExp(
        `predicted perplexity at ${editedPpl.toFixed(3)} \\(\\+[\\d.]+ %\\), above the target of \\+5 %`,
      ),
    );

    fireEvent.click(within(infeasible).getByTestId('refit'));
    const want = reallocateProfiles(profiles, shape, {
      maxPplIncrease: 0.05,
      effects,
      overrides: [override],
      refit: true,
    });
    expect(want.feasible).toBe(true);
    expect(want.layers.map((l) => [l.kRank, l.vRank])).not.toEqual(
      edited.layers.map((l) => [l.kRank, l.vRank]),
    );
    await waitFor(() => expect(shownRanks()).toEqual(want.layers.map((l) => [l.kRank, l.vRank])));
    expect(screen.queryByTestId('infeasible')).toBeNull();
    expect(screen.getByTestId('perplexity-reallocated').textContent).toMatch(
      new RegExp(`perplexity ${(20 * Math.exp(want.predictedNllIncrease!)).toFixed(3)} `),
    );
    expect(20 * Math.exp(want.predictedNllIncrease!)).toBeLessThanOrEqual(20 * 1.05);
  });
});
