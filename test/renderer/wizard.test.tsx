// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from '../../renderer/app/App.tsx';
import { ApiError } from '../../renderer/transport/websocket.ts';
import { CARD, fakeApi } from './fake-api.ts';
import { readyState } from './states.ts';

afterEach(cleanup);

const next = () => screen.getByTestId('next') as HTMLButtonElement;
/** Text fields carry their test id on the field, as the end-to-end test expects: the input is inside. */
const input = (id: string) => screen.getByTestId(id).querySelector('input')!;

describe('the wizard', () => {
  it('refuses Next until a step is valid, and keeps what was entered when going back', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" />);

    expect(screen.getByTestId('step-model')).toBeTruthy();
    expect(next().disabled).toBe(true);
    fireEvent.change(input('model-path'), { target: { value: CARD.dir } });
    expect(next().disabled).toBe(true);
    fireEvent.click(screen.getByTestId('model-load'));
    await screen.findByTestId('model-card');
    expect(api.inspect).toHaveBeenCalledWith(CARD.dir);
    expect(next().disabled).toBe(false);

    fireEvent.click(next());
    expect(screen.getByTestId('step-data')).toBeTruthy();
    // previews are requested for the demo texts; until both are in, the step is not complete
    expect(next().disabled).toBe(true);
    await waitFor(() => expect(next().disabled).toBe(false));
    expect(screen.getByTestId('calib-tokens').textContent).toBe('2000');

    // a window count the text cannot give blocks the step, with the reason shown
    fireEvent.change(input('window'), { target: { value: '128' } });
    fireEvent.change(input('calib-windows'), { target: { value: '40' } });
    await waitFor(() => expect(screen.getByTestId('next-blocked').textContent).toMatch(/only 15 windows/));
    expect(next().disabled).toBe(true);
    fireEvent.change(input('calib-windows'), { target: { value: '10' } });
    await waitFor(() => expect(next().disabled).toBe(false));

    fireEvent.click(screen.getByTestId('back'));
    expect(screen.getByTestId('step-model')).toBeTruthy();
    expect(input('model-path').value).toBe(CARD.dir);
    expect(screen.getByTestId('model-card')).toBeTruthy();

    fireEvent.click(next());
    expect(input('window').value).toBe('128');
    expect(input('calib-windows').value).toBe('10');
    fireEvent.click(next());
    expect(screen.getByTestId('step-method')).toBeTruthy();
  });

  it('opens the run step only when the estimate says the job fits', async () => {
    const api = fakeApi();
    api.estimate.mockResolvedValue({
      memoryBytes: 64 * 2 ** 30,
      availableBytes: 2 ** 30,
      fits: false,
      seconds: 10,
      breakdown: { weights: 0, activations: 0, statistics: 0, runtime: 0 },
    });
    const state = readyState('method');
    render(
      <App api={api} mode="browser" initial={{ ...state, method: { ...state.method, estimate: null } }} />,
    );
    await waitFor(() => expect(screen.getByTestId('estimate').dataset.fits).toBe('false'));
    expect(within(screen.getByTestId('estimate')).getByText(/does not fit/i)).toBeTruthy();
    expect(next().disabled).toBe(true);

    api.estimate.mockResolvedValue({ ...(await api.estimate.mock.results[0].value), fits: true });
    fireEvent.click(screen.getByTestId('mode-memory'));
    fireEvent.change(input('fraction-input'), { target: { value: '40' } });
    await waitFor(() => expect(screen.getByTestId('estimate').dataset.fits).toBe('true'));
    expect(api.estimate).toHaveBeenLastCalledWith(
      expect.objectContaining({ kvFraction: 0.4, method: 'kqsvd' }),
    );
    expect(next().disabled).toBe(false);
  });

  it('explains an unsupported model with the engine’s message and what to do', async () => {
    const api = fakeApi();
    api.inspect.mockRejectedValue(
      new ApiError({
        kind: 'unsupported-model',
        message: 'model_type "mamba" is not supported (llama, mistral, qwen2, gpt2 are)',
        file: '/models/mamba/config.json',
      }),
    );
    render(<App api={api} mode="browser" />);
    fireEvent.change(input('model-path'), { target: { value: '/models/mamba' } });
    fireEvent.click(screen.getByTestId('model-load'));
    const alert = await screen.findByTestId('engine-error');
    expect(alert.dataset.kind).toBe('unsupported-model');
    expect(alert.textContent).toMatch(/"mamba" is not supported/);
    expect(alert.textContent).toMatch(/not supported/i);
    expect(alert.textContent).toMatch(/Llama \(2 and 3.x\), Mistral, Qwen2, Qwen3, Phi-3, Gemma 2 and GPT-2/);
    expect(alert.textContent).toMatch(/mamba\/config\.json/);
    expect(screen.queryByTestId('model-card')).toBeNull();
    expect(next().disabled).toBe(true);
  });

  it('browses the server’s folders for a model path in browser mode', async () => {
    const api = fakeApi();
    render(<App api={api} mode="browser" />);
    fireEvent.click(screen.getByRole('button', { name: 'Browse…' }));
    const dialog = await screen.findByTestId('browse-dialog');
    await within(dialog).findByText(/tiny-llama/);
    fireEvent.click(within(dialog).getByText(/tiny-llama/));
    await waitFor(() => expect(api.browse).toHaveBeenLastCalledWith('/models/tiny-llama'));
    fireEvent.click(within(dialog).getByTestId('browse-choose'));
    // choosing commits the path: the model is inspected at once
    await screen.findByTestId('model-card');
    expect(input('model-path').value).toBe('/models/tiny-llama');
    expect(api.choosePath).not.toHaveBeenCalled();
  });

  it('uses the desktop dialog when there is one', async () => {
    const api = fakeApi();
    api.choosePath.mockResolvedValue('/home/me/model');
    render(<App api={api} mode="desktop" />);
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Choose…' }));
    });
    expect(api.choosePath).toHaveBeenCalledWith('model');
    await waitFor(() => expect(input('model-path').value).toBe('/home/me/model'));
  });

  it('switches between light and dark themes', () => {
    render(<App api={fakeApi()} mode="browser" />);
    const toggle = screen.getByTestId('theme-toggle');
    const before = toggle.dataset.mode;
    fireEvent.click(toggle);
    expect(screen.getByTestId('theme-toggle').dataset.mode).not.toBe(before);
  });
});
