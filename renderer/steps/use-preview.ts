/** A text's preview, kept in step with the model, the source and the window. */
import type { Dispatch } from 'react';
import { useApi } from '../app/api-context.tsx';
import { useKeyedRequest } from '../app/use-keyed-request.ts';
import { previewRequest, requestKey } from '../state/settings.ts';
import type { TextSlot, WizardAction, WizardState } from '../state/wizard.ts';

export function usePreview(state: WizardState, slot: TextSlot, dispatch: Dispatch<WizardAction>) {
  const api = useApi();
  const request = previewRequest(state, slot);
  const key = request ? requestKey(request) : null;
  const held = state.data.previews[slot];
  const { busy, error, retry } = useKeyedRequest(
    key,
    held?.key ?? null,
    () => api.previewData(request!),
    (k, preview) => dispatch({ type: 'previewLoaded', slot, key: k, preview }),
    (k, e) => dispatch({ type: 'previewFailed', slot, key: k, message: e.message }),
  );
  return { busy, error, retry, preview: held && held.key === key ? held.value : null };
}
