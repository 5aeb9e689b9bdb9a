// @vitest-environment jsdom
/**
 * The review: the quality warning and its threshold, per-layer colours, legend, hover and focus tooltips,
 * readable log ticks, one chart code path for the wizard and the report, and the review's target slider
 * and re-fit, whose allocations must be the engine allocator's exactly.
 */
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { allocateByMemory, applyOverrides, reallocateProfiles } from '../../main/core/allocate/index.ts';
import { PROFILE_BOX, logTicks, logScale, minTickGap } from '../../main/core/charts/geometry.ts';
import { profileChart, Y_TICK_GAP } from '../../main/core/charts/profile.ts';
import { paretoFront } from '../../main/core/pareto.ts';
import { App } from '../../renderer/app/App.tsx';
import { ProfileChart } from '../../renderer/charts/ProfileChart.tsx';
import { profileSeries } from '../../renderer/charts/profile-data.ts';
import { profilesFromReport } from '../../renderer/state/run.ts';
import { cacheShape } from '../../renderer/steps/ReviewStep.tsx';
import { CARD, compressReport, fakeApi, reportData } from './fake-api.ts';
import { doneState } from './states.ts';

afterEach(cleanup);

function worse(state: ReturnType<typeof doneState>) {
  // +227 %: the case from the issue
  const result = { ...state.run!.result!, perplexity: { original: 10, compressed: 32.7 } };
  return { ...state, run: { ...state.run!, result } };
}

describe('large quality losses', () => {
  it('warn past the threshold the user sets, and the export asks first', async () => {
    const api = fakeApi();
    const state = worse(doneState(api));
    const { unmount } = render(<App api={api} mode="browser" initial={state} />);
    expect(screen.getByTestId('quality-warning').textContent).toMatch(/\+227 %/);
    const field = within(screen.getByTestId('warn-above')).getByRole('textbox') as HTMLInputElement;
    expect(field.value).toBe('10');
    fireEvent.change(field, { target: { value: '300' } });
    expect(screen.queryByTestId('quality-warning')).toBeNull();
    fireEvent.change(field, { target: { value: '50' } });
    expect(screen.getByTestId('quality-warning')).toBeTruthy();
    unmount();

    const onExport = {
      ...worse(doneState(api, 'export')),
      export: { path: '/out/x', onnx: true, force: false, job: null },
    };
    render(<App api={api} mode="browser" initial={onExport} />);
    expect(screen.getByTestId('quality-warning')).toBeTruthy();
    const button = screen.getByTestId('export');
    expect(button.dataset.warned).toBe('true');
    expect(button.textContent).toMatch(/anyway/);
    fireEvent.click(button);
    expect(screen.getByTestId('export-confirm')).toBeTruthy();
    expect(api.exportJob).not.toHaveBeenCalled();
    fireEvent.click(screen.getByTestId('export-confirm-yes'));
    await screen.findByTestId('export-state');
    expect(api.exportJob).toHaveBeenCalled();
    // once written, the files' own perplexity (the fixture's export: +2.5 %) is what is judged
    const exportId = (await api.exportJob.mock.results[0].value).id;
    act(() => api.emit(exportId, { type: 'state', state: 'done' }));
    await screen.findByTestId('export-result');
    await waitFor(() => expect(screen.queryByTestId('quality-warning')).toBeNull());
  });

  it('stay quiet within the threshold', () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={doneState(api)} />);
    expect(screen.queryByTestId('quality-warning')).toBeNull();
  });
});

describe('the error-rank chart', () => {
  const report = compressReport();
  const series = profileSeries(
    profilesFromReport(report),
    CARD.headDim,
    new Map(report.layers.map((l) => [l.layer, l])),
  );

  it('gives each layer its own colour, a legend entry, a highlight and a tooltip on hover and focus', () => {
    render(<ProfileChart series={series} headDim={CARD.headDim} layers={series.length} bytesPerRank={64} />);
    const curves = screen.getAllByTestId('profile-curve');
    expect(new Set(curves.map((c) => c.getAttribute('stroke'))).size).toBe(curves.length);
    expect(screen.getAllByTestId('legend-item').map((l) => l.textContent)).toEqual(
      series.map((s) => `Layer ${s.layer}`),
    );
    const point = screen.getAllByTestId('profile-point').find((p) => p.dataset.layer === '1')!;
    fireEvent.mouseEnter(point);
    expect(screen.getByTestId('chart-tooltip').textContent).toMatch(
      /Layer 1: key rank \d+, value rank \d+ of/,
    );
    expect(screen.getByTestId('chart-tooltip').textContent).toMatch(/B per token, error/);
    const highlighted = screen.getAllByTestId('profile-series').filter((g) => g.dataset.highlighted);
    expect(highlighted.map((g) => g.dataset.layer)).toEqual(['1']);
    fireEvent.mouseLeave(screen.getByTestId('profile-chart'));
    expect(screen.queryByTestId('chart-tooltip')).toBeNull();
    fireEvent.focus(screen.getAllByTestId('chosen-point')[2]);
    expect(screen.getByTestId('chart-tooltip').textContent).toMatch(/Layer 2 \(chosen\)/);
  });

  it('cycles dash patterns past the palette', () => {
    const many = Array.from({ length: 9 }, (_, layer) => ({ ...series[0], layer }));
    const chart = profileChart({ curves: many, headDim: CARD.headDim, box: PROFILE_BOX });
    const styles = chart.curves.map((c) => `${c.colour}|${c.dash}`);
    expect(new Set(styles).size).toBe(9);
  });

  it('labels log ticks at least a label apart, also where 0.07–0.1 used to collide', () => {
    for (const [lo, hi, height] of [
      [0.065, 0.105, 120],
      [1e-7, 0.9, 140],
      [0.001, 1, 60],
      [0.02, 0.6, 300],
    ]) {
      const y = logScale([lo, hi], [height, 0]);
      const ticks = logTicks([lo, hi], y, Y_TICK_GAP);
      expect(ticks.length).toBeGreaterThanOrEqual(1);
      expect(minTickGap(ticks)).toBeGreaterThanOrEqual(Y_TICK_GAP);
    }
  });

  it('draws the same path data as the report, from the same function', async () => {
    const { renderReportHtml } = await import('../../main/export/report-html.ts');
    render(<ProfileChart series={series} headDim={CARD.headDim} layers={series.length} />);
    const appPaths = screen.getAllByTestId('profile-curve').map((p) => p.getAttribute('d'));
    const direct = profileChart({
      curves: report.profile!.map((points, layer) => ({
        layer,
        front: paretoFront(points),
        chosen: report.layers[layer],
      })),
      headDim: CARD.headDim,
      box: PROFILE_BOX,
    });
    expect(appPaths).toEqual(direct.curves.map((c) => c.d));
    // the report prints that function's paths
    // the fixture's export report carries this same compress report
    const html = renderReportHtml(reportData('/out'));
    const reportPaths = [...html.matchAll(/<g class="curve" data-layer="\d+"><path d="([^"]*)"/g)].map(
      (m) => m[1],
    );
    expect(reportPaths).toEqual(appPaths);
  });
});

describe('the review’s target slider and re-fit', () => {
  it('re-allocate in the wizard exactly as the engine allocator does, hand-set layers held', async () => {
    const api = fakeApi();
    const state = doneState(api);
    const report = state.run!.result!;
    const profiles = profilesFromReport(report).map((p) => ({ layer: p.layer, points: p.points }));
    const shape = cacheShape(report, CARD);
    render(<App api={api} mode="browser" initial={state} />);
    const slider = within(screen.getByTestId('target-slider')).getByRole('slider');
    fireEvent.change(slider, { target: { value: 0.4 } });
    const engine = allocateByMemory(profiles, shape, 0.4);
    const shown = () =>
      screen.getAllByTestId('layer-group').map((g) => [Number(g.dataset.kRank), Number(g.dataset.vRank)]);
    await waitFor(() => expect(shown()).toEqual(engine.layers.map((l) => [l.kRank, l.vRank])));
    expect(api.reallocate).not.toHaveBeenCalled();

    // re-fit with a hand-set layer: the engine's applyOverrides with reallocate, exactly
    const override = {
      layer: 0,
      kRank: profiles[0].points.at(-1)!.kRank,
      vRank: profiles[0].points.at(-1)!.vRank,
    };
    const refit = reallocateProfiles(profiles, shape, {
      kvFraction: 0.4,
      overrides: [override],
      refit: true,
    });
    const direct = applyOverrides(engine, profiles, [override], { reallocate: true });
    expect(refit.layers).toEqual(
      direct.layers.map(({ layer, kRank, vRank, error }) => ({ layer, kRank, vRank, error })),
    );
    expect(refit.layers[0]).toMatchObject({ kRank: override.kRank, vRank: override.vRank });
    expect(refit.kvBytesPerToken.compressed).toBe(direct.totalBytesPerToken);
  });

  it('a hand edit that misses the memory target offers re-fit, which holds the edit and meets the target', async () => {
    const api = fakeApi();
    const state = doneState(api);
    const report = state.run!.result!;
    const profiles = profilesFromReport(report).map((p) => ({ layer: p.layer, points: p.points }));
    const shape = cacheShape(report, CARD);
    // the engine's reallocate, as the real engine answers it (without re-fitting the others)
    api.reallocate.mockImplementation(async (req) =>
      reallocateProfiles(profiles, shape, { kvFraction: req.kvFraction, overrides: req.overrides ?? [] }),
    );
    render(<App api={api} mode="browser" initial={state} />);
    fireEvent.change(within(screen.getByTestId('target-slider')).getByRole('slider'), {
      target: { value: 0.5 },
    });
    const groups = () =>
      screen.getAllByTestId('layer-group').map((g) => [Number(g.dataset.kRank), Number(g.dataset.vRank)]);
    const full = profiles[0].points.reduce((a, p) => (p.kRank + p.vRank > a.kRank + a.vRank ? p : a));
    fireEvent.click(screen.getAllByTestId('layer-group')[0]);
    const editor = await screen.findByTestId('layer-editor');
    fireEvent.mouseDown(within(within(editor).getByTestId('edit-k-rank')).getByRole('combobox'));
    fireEvent.click(screen.getByRole('option', { name: String(full.kRank) }));
    fireEvent.mouseDown(within(within(editor).getByTestId('edit-v-rank')).getByRole('combobox'));
    fireEvent.click(screen.getByRole('option', { name: String(full.vRank) }));
    fireEvent.click(within(editor).getByTestId('edit-apply'));
    await screen.findByTestId('infeasible');
    expect(groups()[0]).toEqual([full.kRank, full.vRank]);

    fireEvent.click(screen.getByTestId('refit'));
    const override = { layer: 0, kRank: full.kRank, vRank: full.vRank };
    const want = reallocateProfiles(profiles, shape, { kvFraction: 0.5, overrides: [override], refit: true });
    expect(want.feasible).toBe(true);
    await waitFor(() => expect(groups()).toEqual(want.layers.map((l) => [l.kRank, l.vRank])));
    expect(screen.queryByTestId('infeasible')).toBeNull();
  });
});
