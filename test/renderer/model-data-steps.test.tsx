// @vitest-environment jsdom
/**
 * Issue 14 (items 7, 8, 10): the data step says when a text could not be read and how many windows a
 * text holds; the model step drops a stale error, lists the local models, takes a dropped folder it can
 * place and explains one it cannot, answers a typed hub id with the download command; recent jobs show
 * their target and outcome; the model card marks cache rows beyond the model's context.
 */
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobSummary, LocalModels } from '../../main/contract/index.ts';
import { ApiProvider } from '../../renderer/app/api-context.tsx';
import { App } from '../../renderer/app/App.tsx';
import { RecentJobs } from '../../renderer/app/RecentJobs.tsx';
import { hubRepoId } from '../../renderer/app/errors.ts';
import { ModelCardView } from '../../renderer/steps/ModelCardView.tsx';
import { matchDropped } from '../../renderer/steps/ModelStep.tsx';
import { ApiError } from '../../renderer/transport/websocket.ts';
import { CARD, fakeApi } from './fake-api.ts';
import { readyState } from './states.ts';

afterEach(cleanup);

const input = (id: string) => screen.getByTestId(id).querySelector('input')!;

const MODELS: LocalModels = {
  bundled: null,
  hubCache: '/home/me/.cache/huggingface/hub',
  huggingFace: [
    {
      path: '/home/me/.cache/huggingface/hub/models--org--tiny/snapshots/abc123',
      name: 'org/tiny',
      revision: 'abc123',
    },
  ],
  recent: [{ path: '/work/models/stories', name: 'stories', at: '2026-01-01T00:00:00Z' }],
};

function notFound(file: string) {
  return new ApiError({ kind: 'bad-input', message: `${file}: does not exist: check the path`, file });
}

/** A drop event as a browser gives it: a folder's entry, which carries a name and no path. */
function dropFolder(target: HTMLElement, name: string) {
  const entry = { name, isDirectory: true, isFile: false };
  fireEvent.drop(target, {
    dataTransfer: {
      items: [{ kind: 'file', webkitGetAsEntry: () => entry }],
      files: [{ name }],
      types: ['Files'],
    },
  });
}

describe('the data step', () => {
  it('says a text could not be read instead of “Reading…”, and clears it once a text reads', async () => {
    const api = fakeApi();
    const state = readyState('data');
    api.previewData.mockRejectedValue(notFound('/data/missing.txt'));
    render(<App api={api} mode="browser" initial={state} />);
    fireEvent.click(screen.getByTestId('calib-file'));
    fireEvent.change(input('calib-path'), { target: { value: '/data/missing.txt' } });
    await screen.findByTestId('engine-error');
    await waitFor(() =>
      expect(screen.getByTestId('data-issues').textContent).toMatch(
        /calibration text could not be read: .*does not exist/,
      ),
    );
    expect(screen.getByTestId('data-issues').textContent).not.toMatch(/Reading the calibration/);
    expect((screen.getByTestId('next') as HTMLButtonElement).disabled).toBe(true);

    api.previewData.mockReset();
    api.previewData.mockResolvedValue({
      path: '/data/ok.txt',
      bytes: 100,
      tokens: 2000,
      windows: 15,
      window: 128,
      sample: 'hello',
      promptSuggestions: [],
    });
    fireEvent.change(input('calib-path'), { target: { value: '/data/ok.txt' } });
    await screen.findByTestId('calib-preview');
    await waitFor(() => expect(screen.queryByText(/could not be read/)).toBeNull());
  });

  it('says how many windows each text holds beside the windows fields', async () => {
    render(<App api={fakeApi()} mode="browser" initial={readyState('data')} />);
    const calib = screen.getByTestId('calib-windows');
    const held = readyState('data').data.previews.calib!.value.windows;
    expect(calib.textContent).toMatch(new RegExp(`The text holds ${held} windows? of 128 tokens`));
    expect(screen.getByTestId('eval-windows').textContent).toMatch(
      /The text holds \d+ windows? of 128 tokens/,
    );
  });
});

describe('the model step', () => {
  it('drops an inspect error once the field is edited or cleared', async () => {
    const api = fakeApi();
    api.inspect.mockRejectedValue(notFound('/nowhere'));
    render(<App api={api} mode="browser" />);
    fireEvent.change(input('model-path'), { target: { value: '/nowhere' } });
    fireEvent.click(screen.getByTestId('model-load'));
    await screen.findByTestId('engine-error');
    fireEvent.change(input('model-path'), { target: { value: '' } });
    expect(screen.queryByTestId('engine-error')).toBeNull();
  });

  it('lists Hugging Face snapshots and recent folders, and inspects the one picked', async () => {
    const api = fakeApi();
    api.listModels.mockResolvedValue(MODELS);
    render(<App api={api} mode="browser" />);
    const items = await screen.findAllByTestId('local-model');
    expect(items.map((i) => i.textContent)).toEqual([
      expect.stringMatching(/^org\/tinyrevision abc123/),
      expect.stringMatching(/^stories\/work\/models\/stories/),
    ]);
    fireEvent.click(items[0]);
    await waitFor(() => expect(api.inspect).toHaveBeenCalledWith(MODELS.huggingFace[0].path));
    expect(input('model-path').value).toBe(MODELS.huggingFace[0].path);
  });

  it('starts an empty model field on the bundled model, and leaves a filled one alone', async () => {
    const bundled = { path: '/opt/rankwise/assets/stories260K', name: 'stories260K (bundled with Rankwise)' };
    const api = fakeApi();
    api.listModels.mockResolvedValue({ ...MODELS, bundled });
    render(<App api={api} mode="browser" />);
    await waitFor(() => expect(input('model-path').value).toBe(bundled.path));
    const items = await screen.findAllByTestId('local-model');
    expect(items[0].textContent).toMatch(/^stories260K \(bundled with Rankwise\)/);
    fireEvent.click(screen.getByTestId('model-load'));
    await waitFor(() => expect(api.inspect).toHaveBeenCalledWith(bundled.path));
    cleanup();

    const typed = fakeApi();
    let answer: (m: LocalModels) => void = () => undefined;
    typed.listModels.mockReturnValue(new Promise<LocalModels>((resolve) => (answer = resolve)));
    render(<App api={typed} mode="browser" />);
    fireEvent.change(input('model-path'), { target: { value: '/work/mine' } });
    answer({ ...MODELS, bundled });
    await screen.findAllByTestId('local-model');
    expect(input('model-path').value).toBe('/work/mine');
  });

  it('says how many models the server could not list, and the --root that lists them', async () => {
    const api = fakeApi();
    api.listModels.mockResolvedValue({ ...MODELS, huggingFace: [], hidden: 3 });
    render(<App api={api} mode="browser" />);
    const note = await screen.findByTestId('local-models-hidden');
    expect(note.textContent).toMatch(/3 more model folders lie outside/);
    expect(note.textContent).toMatch(/--root \/home\/me\/\.cache\/huggingface\/hub/);
  });

  it('takes a dropped folder it can place by name', async () => {
    const api = fakeApi();
    api.listModels.mockResolvedValue(MODELS);
    render(<App api={api} mode="browser" />);
    await screen.findAllByTestId('local-model');
    dropFolder(screen.getByTestId('step-model'), 'models--org--tiny');
    await waitFor(() => expect(api.inspect).toHaveBeenCalledWith(MODELS.huggingFace[0].path));
  });

  it('explains a dropped folder it cannot place, and offers Browse', async () => {
    const api = fakeApi();
    api.listModels.mockResolvedValue(MODELS);
    render(<App api={api} mode="browser" />);
    await screen.findAllByTestId('local-model');
    dropFolder(screen.getByTestId('step-model'), 'my-model');
    const note = await screen.findByTestId('drop-message');
    expect(note.textContent).toMatch(/not told where a dropped folder lies/);
    expect(note.textContent).toMatch(/“my-model”/);
    expect(note.textContent).toMatch(/Browse…/);
    expect(api.inspect).not.toHaveBeenCalled();
  });

  it('answers a typed hub id with the download command, not a path refusal', async () => {
    const api = fakeApi();
    api.inspect.mockRejectedValue(
      new ApiError({
        kind: 'bad-input',
        message: 'meta-llama/Llama-3.2-1B: outside the folders this server may use: /work',
        file: 'meta-llama/Llama-3.2-1B',
      }),
    );
    render(<App api={api} mode="browser" />);
    fireEvent.change(input('model-path'), { target: { value: 'meta-llama/Llama-3.2-1B' } });
    fireEvent.click(screen.getByTestId('model-load'));
    const advice = await screen.findByTestId('hub-id-advice');
    expect(advice.textContent).toMatch(/works offline/);
    expect(advice.textContent).toMatch(/hf download meta-llama\/Llama-3\.2-1B/);
    expect(advice.textContent).toMatch(/huggingface-cli download meta-llama\/Llama-3\.2-1B/);
    expect(advice.textContent).not.toMatch(/outside the folders/);
  });
});

describe('hubRepoId', () => {
  it.each([
    ['meta-llama/Llama-3.2-1B', 'meta-llama/Llama-3.2-1B'],
    ['Qwen/Qwen2.5-0.5B-Instruct', 'Qwen/Qwen2.5-0.5B-Instruct'],
    [' gpt2/x ', 'gpt2/x'],
    ['/models/tiny', null],
    ['./org/name', null],
    ['~/models', null],
    ['org/name/snapshots', null],
    ['C:\\models\\tiny', null],
    ['org/', null],
    ['.hidden/name', null],
    ['org--x/name', null],
    ['org/na..me', null],
    ['gpt2', null],
  ])('%s → %s', (text, id) => expect(hubRepoId(text)).toBe(id));
});

describe('matchDropped', () => {
  it('matches a repository folder, its short name, a revision or a recent folder', () => {
    expect(matchDropped('models--org--tiny', MODELS)[0].path).toBe(MODELS.huggingFace[0].path);
    expect(matchDropped('tiny', MODELS)[0].path).toBe(MODELS.huggingFace[0].path);
    expect(matchDropped('abc123', MODELS)[0].path).toBe(MODELS.huggingFace[0].path);
    expect(matchDropped('stories', MODELS)[0].path).toBe('/work/models/stories');
    expect(matchDropped('other', MODELS)).toEqual([]);
    expect(matchDropped('tiny', null)).toEqual([]);
  });
});

describe('recent jobs', () => {
  it('show each job’s target, the cache kept and perplexity before and after', async () => {
    const api = fakeApi();
    const base: JobSummary = {
      id: 'job-1',
      kind: 'compress',
      state: 'done',
      settings: {
        model: '/models/tiny-llama',
        calib: { builtin: 'demo-calibration' },
        eval: { builtin: 'demo-evaluation' },
        method: 'kqsvd',
        budget: 0.05,
      },
      createdAt: '2026-01-01T00:00:00Z',
      outcome: { kvFraction: 0.375, perplexity: { original: 12.34, compressed: 13.1 } },
    };
    const other: JobSummary = {
      ...base,
      id: 'job-2',
      settings: { ...base.settings, budget: undefined, kvFraction: 0.5 },
      outcome: undefined,
    };
    api.listJobs.mockResolvedValue([base, other]);
    render(
      <ApiProvider api={api} mode="browser">
        <RecentJobs open onClose={() => undefined} onOpenJob={async () => undefined} />
      </ApiProvider>,
    );
    const items = await screen.findAllByTestId('recent-job');
    expect(within(items[0]).getByTestId('recent-job-target').textContent).toBe('error budget 0.05');
    expect(within(items[0]).getByTestId('recent-job-outcome').textContent).toBe(
      'kept 37.5 % of the cache · perplexity 12.34 → 13.10',
    );
    expect(within(items[1]).getByTestId('recent-job-target').textContent).toBe(
      'target: keep 50.0 % of the cache',
    );
    expect(within(items[1]).queryByTestId('recent-job-outcome')).toBeNull();
  });
});

describe('the model card', () => {
  it('marks the cache rows longer than the model’s context', () => {
    const card = { ...CARD, maxPositions: 512 };
    render(<ModelCardView card={card} />);
    const rows = screen.getAllByTestId('kv-sequence-row');
    expect(rows).toHaveLength(card.kvBytesPerSequence.length);
    for (const [i, row] of rows.entries()) {
      const beyond = card.kvBytesPerSequence[i].tokens > 512;
      expect(row.textContent?.includes('beyond this model’s context of 512 tokens')).toBe(beyond);
    }
    expect(rows.some((r) => /beyond/.test(r.textContent ?? ''))).toBe(true);
  });
});
