// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from '../../renderer/app/App.tsx';
import { CARD, CHOSEN, fakeApi, LAYERS, ORIGINAL_PER_TOKEN, profilePoints, UNIT } from './fake-api.ts';
import { doneState, readyState } from './states.ts';

afterEach(cleanup);

const field = (root: HTMLElement) => root.querySelector('input')!;

/** Opens a MUI select by its test id and picks the option named `name`. */
function choose(testId: string, name: string) {
  fireEvent.mouseDown(within(screen.getByTestId(testId)).getByRole('combobox'));
  fireEvent.click(screen.getByRole('option', { name }));
}

const groups = () => screen.getAllByTestId('layer-group');
const group = (layer: number) => groups().find((g) => g.dataset.layer === String(layer))!;

describe('the run step', () => {
  it('starts the job, shows stages, per-layer progress and live curves from events, and cancels and resumes', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={readyState('run')} />);
    expect(screen.getByTestId('step-run')).toBeTruthy();
    fireEvent.click(screen.getByTestId('start'));
    await waitFor(() => expect(api.subscribe).toHaveBeenCalledWith('job-1', expect.any(Function)));
    expect(api.startJob).toHaveBeenCalledWith(
      expect.objectContaining({
        model: CARD.dir,
        method: 'kqsvd',
        budget: 0.05,
        window: 128,
        calibWindows: 8,
      }),
    );
    expect(screen.getByTestId('run-state').textContent).toBe('queued');

    act(() => {
      api.emit('job-1', { type: 'state', state: 'running' });
      api.emit('job-1', {
        type: 'progress',
        stage: 'profile',
        layer: 1,
        done: 1,
        total: LAYERS,
        etaSeconds: 90,
        memoryBytes: 500 * 2 ** 20,
      });
      for (const layer of [0, 1]) {
        api.emit('job-1', {
          type: 'profile',
          layer,
          keySpace: 'pre-rope',
          points: profilePoints(layer),
          cached: false,
        });
      }
    });
    expect(screen.getByTestId('run-state').textContent).toBe('running');
    const progress = screen.getByTestId('job-progress');
    expect(progress.dataset.stage).toBe('profile');
    expect(progress.textContent).toMatch(/layer 2 of 4/);
    expect(screen.getByText(/1 min 30 s left/)).toBeTruthy();
    expect(screen.getByTestId('layer-progress').dataset.done).toBe('2');
    const live = screen.getByTestId('live-profile');
    expect(live.dataset.curves).toBe('2');
    expect(within(live as unknown as HTMLElement).getAllByTestId('profile-curve')).toHaveLength(2);
    // Next stays shut while the job runs
    expect((screen.getByTestId('next') as HTMLButtonElement).disabled).toBe(true);

    fireEvent.click(screen.getByTestId('cancel'));
    await waitFor(() => expect(api.cancelJob).toHaveBeenCalledWith('job-1'));
    act(() =>
      api.emit('job-1', {
        type: 'state',
        state: 'cancelled',
        error: { kind: 'cancelled', message: 'cancelled' },
      }),
    );
    expect(screen.getByTestId('run-state').textContent).toBe('cancelled');

    fireEvent.click(screen.getByTestId('resume'));
    await waitFor(() => expect(api.resumeJob).toHaveBeenCalledWith('job-1'));
    await waitFor(() => expect(screen.getByTestId('run-state').textContent).toBe('queued'));
    act(() => {
      api.emit('job-1', { type: 'state', state: 'running' });
      api.emit('job-1', {
        type: 'profile',
        layer: 2,
        keySpace: 'pre-rope',
        points: profilePoints(2),
        cached: false,
      });
      api.emit('job-1', { type: 'state', state: 'done' });
    });
    // the curves measured before the cancel are still there
    expect(screen.getByTestId('live-profile').dataset.curves).toBe('3');
    await waitFor(() => expect(api.getResult).toHaveBeenCalledWith('job-1'));
    await waitFor(() => expect((screen.getByTestId('next') as HTMLButtonElement).disabled).toBe(false));
    fireEvent.click(screen.getByTestId('next'));
    expect(screen.getByTestId('step-review')).toBeTruthy();
  });

  it('shows a failed job’s engine error with what to do', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={readyState('run')} />);
    fireEvent.click(screen.getByTestId('start'));
    await waitFor(() => expect(api.subscribe).toHaveBeenCalled());
    act(() =>
      api.emit('job-1', {
        type: 'state',
        state: 'failed',
        error: { kind: 'bad-input', message: 'calibration needs at least 2 windows', file: '/data/x.txt' },
      }),
    );
    const alert = screen.getByTestId('engine-error');
    expect(alert.dataset.kind).toBe('bad-input');
    expect(alert.textContent).toMatch(/calibration needs at least 2 windows/);
    expect(alert.textContent).toMatch(/What to do/);
    expect(screen.getByTestId('resume')).toBeTruthy();
  });
});

describe('the review step', () => {
  it('draws one bar group per layer with the job’s ranks, and edits a layer through reallocate', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={doneState(api)} />);
    expect(groups()).toHaveLength(LAYERS);
    CHOSEN.forEach((c, layer) => {
      expect(group(layer).dataset.kRank).toBe(String(c.k));
      expect(group(layer).dataset.vRank).toBe(String(c.v));
    });
    expect(group(1).getAttribute('aria-label')).toMatch(/Layer 1: key rank 12, value rank 16 of 32/);
    const perplexity = screen.getByTestId('perplexity');
    expect(perplexity.textContent).toMatch(/20\.000 → 20\.500/);
    const memoryBefore = screen.getByTestId('memory-per-token').textContent;
    expect(screen.getAllByTestId('chosen-point')).toHaveLength(LAYERS);

    fireEvent.click(group(1));
    const editor = await screen.findByTestId('layer-editor');
    expect(field(within(editor).getByTestId('edit-k-rank')).value).toBe('12');
    fireEvent.mouseDown(within(within(editor).getByTestId('edit-k-rank')).getByRole('combobox'));
    expect(screen.getAllByRole('option').map((o) => Number(o.textContent))).toEqual([
      4, 8, 12, 16, 20, 24, 28, 32,
    ]);
    fireEvent.click(screen.getByRole('option', { name: '32' }));
    expect(field(within(editor).getByTestId('edit-k-rank')).value).toBe('32');
    // the choice's cost shows before it is applied
    const after = CHOSEN.reduce((s, c) => s + (c.k + c.v) * UNIT, 0) + 20 * UNIT;
    expect(within(editor).getByTestId('edit-preview').textContent).toMatch(
      new RegExp(`${(after / 1024).toFixed(2)} KiB`),
    );
    fireEvent.click(within(editor).getByTestId('edit-apply'));

    await waitFor(() =>
      expect(api.reallocate).toHaveBeenCalledWith({
        jobId: 'job-1',
        overrides: [{ layer: 1, kRank: 32, vRank: 16 }],
      }),
    );
    await waitFor(() => expect(group(1).dataset.kRank).toBe('32'));
    expect(group(1).dataset.edited).toBe('true');
    expect(screen.getByTestId('memory-per-token').textContent).not.toBe(memoryBefore);
    expect(screen.getByTestId('memory-per-token').textContent).toMatch(
      new RegExp(`${(after / 1024).toFixed(2)} KiB`),
    );
    expect(screen.queryByTestId('layer-editor')).toBeNull();
  });

  it('moves between layers with the arrow keys and opens the editor with Enter', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={doneState(api)} />);
    expect(group(0).getAttribute('tabindex')).toBe('0');
    expect(group(1).getAttribute('tabindex')).toBe('-1');
    group(0).focus();
    fireEvent.keyDown(group(0), { key: 'ArrowRight' });
    expect(document.activeElement).toBe(group(1));
    fireEvent.keyDown(group(1), { key: 'ArrowRight' });
    fireEvent.keyDown(group(2), { key: 'ArrowLeft' });
    expect(document.activeElement).toBe(group(1));
    fireEvent.keyDown(group(1), { key: 'Enter' });
    const editor = await screen.findByTestId('layer-editor');
    expect(editor.textContent).toMatch(/Layer 1/);
  });

  it('sets the memory figures from the context, batch and memory the user gives', () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={doneState(api)} />);
    const panel = screen.getByTestId('memory-panel');
    fireEvent.change(field(within(panel).getByTestId('memory-context')), { target: { value: '1024' } });
    fireEvent.change(field(within(panel).getByTestId('memory-batch')), { target: { value: '4' } });
    const compressed = CHOSEN.reduce((s, c) => s + (c.k + c.v) * UNIT, 0);
    const saved = (ORIGINAL_PER_TOKEN - compressed) * 1024 * 4;
    expect(within(panel).getByTestId('memory-saved').textContent).toMatch(
      new RegExp(`${(saved / 2 ** 20).toFixed(2)} MiB saved`),
    );
    fireEvent.change(field(within(panel).getByTestId('memory-size')), { target: { value: '1' } });
    const weights = CARD.parameters * 4;
    const before = Math.floor((2 ** 30 - weights) / (ORIGINAL_PER_TOKEN * 1024));
    const afterFit = Math.floor((2 ** 30 - weights) / (compressed * 1024));
    expect(within(panel).getByTestId('memory-sequences').textContent).toMatch(
      new RegExp(`${before} sequences .* fit before and ${afterFit} after: ${afterFit - before} more`),
    );
    expect(before).toBeLessThan(1000); // so that no thousands separator enters the pattern above
    expect(within(panel).getByTestId('memory-sequences').textContent).toMatch(/\bafter: \d+ more/);
  });

  it('runs a second method on the same data and compares the two', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" initial={doneState(api)} />);
    choose('compare-method', 'Per-head PCA (K-SVD)');
    fireEvent.click(screen.getByTestId('compare-start'));
    await waitFor(() => expect(api.startJob).toHaveBeenCalledTimes(1));
    const settings = api.startJob.mock.calls[0][0];
    expect(settings).toMatchObject({
      method: 'ksvd',
      budget: 0.05,
      window: 128,
      calibWindows: 8,
      evalWindows: 4,
    });
    await waitFor(() => expect(api.subscribe).toHaveBeenCalledWith('job-2', expect.any(Function)));
    expect(screen.getByTestId('compare-state').textContent).toBe('queued');
    act(() => api.emit('job-2', { type: 'state', state: 'done' }));
    const table = await screen.findByTestId('compare-table');
    expect(table.textContent).toMatch(/KQ-SVD/);
    expect(table.textContent).toMatch(/Per-head PCA/);
    expect(table.textContent).toMatch(/20\.500/);
    expect(table.textContent).toMatch(/21\.500/);
  });
});

describe('the export step', () => {
  it('exports with the edited ranks and lists the files and the report', async () => {
    const api = fakeApi();
    const state = doneState(api, 'export');
    const allocation = await api.reallocate({
      jobId: 'job-1',
      overrides: [{ layer: 2, kRank: 32, vRank: 32 }],
    });
    const edited = {
      ...state,
      review: { ...state.review, allocation, overrides: [{ layer: 2, kRank: 32, vRank: 32 }] },
    };
    render(<App api={api} mode="browser" initial={edited} />);
    const path = field(screen.getByTestId('export-path'));
    expect(path.value).toBe('/models/tiny-llama-kqsvd');
    fireEvent.change(path, { target: { value: '/out/tiny-llama-kqsvd' } });
    fireEvent.click(screen.getByTestId('export'));
    await waitFor(() => expect(api.exportJob).toHaveBeenCalledTimes(1));
    const request = api.exportJob.mock.calls[0][0];
    expect(request).toMatchObject({ jobId: 'job-1', out: '/out/tiny-llama-kqsvd', onnx: true, force: false });
    expect(request.ranks).toContainEqual({ layer: 2, kRank: 32, vRank: 32 });
    expect(request.ranks).toHaveLength(LAYERS);

    const exportId = (await api.exportJob.mock.results[0].value).id;
    await waitFor(() => expect(api.subscribe).toHaveBeenCalledWith(exportId, expect.any(Function)));
    act(() => {
      api.emit(exportId, { type: 'state', state: 'running' });
      api.emit(exportId, {
        type: 'progress',
        stage: 'verify onnx',
        layer: -1,
        done: 3,
        total: 8,
        etaSeconds: 5,
        memoryBytes: 1,
      });
    });
    expect(screen.getByTestId('export-state').textContent).toBe('running');
    expect(screen.getByTestId('job-progress').textContent).toMatch(/Checking the ONNX decoder/);
    act(() => api.emit(exportId, { type: 'state', state: 'done' }));
    const result = await screen.findByTestId('export-result');
    expect(api.getExportReport).toHaveBeenCalledWith(exportId);
    expect(screen.getByTestId('export-state').textContent).toBe('done');
    const files = within(result)
      .getAllByTestId('export-file')
      .map((f) => f.textContent);
    expect(files.join(' ')).toMatch(/model\.safetensors/);
    expect(files.join(' ')).toMatch(/model\.onnx/);
    expect(result.textContent).toMatch(/\/out\/tiny-llama-kqsvd\/rankwise-report\.html/);
    expect(result.textContent).toMatch(/verified/);
  });

  it('exports the job’s own allocation when nothing was edited, and explains a refused folder', async () => {
    const api = fakeApi();
    api.exportJob.mockRejectedValueOnce(
      Object.assign(new Error('already exists'), {
        info: { kind: 'bad-input', message: '/out/x: already exists; choose another folder or replace it' },
      }),
    );
    render(<App api={api} mode="browser" initial={doneState(api, 'export')} />);
    fireEvent.click(screen.getByTestId('export'));
    const alert = await screen.findByTestId('engine-error');
    expect(alert.textContent).toMatch(/already exists/);
    expect(alert.textContent).toMatch(/Replace the folder/);
    expect(api.exportJob.mock.calls[0][0]).not.toHaveProperty('ranks');
  });
});
