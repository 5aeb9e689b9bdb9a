/**
 * A result that costs more perplexity than the user accepts is flagged where it is reviewed and where it
 * is exported: the threshold field, and past it an alert.
 */
import Alert from '@mui/material/Alert';
import TextField from '@mui/material/TextField';
import type { Dispatch } from 'react';
import type { CompressReport } from '../../main/contract/index.ts';
import { formatChange, parseThreshold, qualityWarning } from '../state/quality.ts';
import type { WizardAction } from '../state/wizard.ts';

/** The quality threshold field and, past it, the warning: shared by the review and the export step. */
export function QualityWarning({
  result,
  warnAbove,
  dispatch,
  editable = true,
}: {
  result: Pick<CompressReport, 'perplexity'>;
  warnAbove: string;
  dispatch: Dispatch<WizardAction>;
  editable?: boolean;
}) {
  const warning = qualityWarning(result, warnAbove);
  return (
    <>
      {warning && (
        <Alert severity={warning.severe ? 'error' : 'warning'} sx={{ mt: 1 }} data-testid="quality-warning">
          Perplexity rose by <strong>{formatChange(warning.change)}</strong>, more than the{' '}
          {formatChange(warning.threshold)} you accept: this model predicts the evaluation text clearly worse
          than the original. Keep more of the cache (a larger target) before exporting.
        </Alert>
      )}
      {editable && (
        <TextField
          label="Warn above (perplexity increase, %)"
          size="small"
          value={warnAbove}
          onChange={(e) => dispatch({ type: 'warnAbove', value: e.target.value })}
          error={Number.isNaN(parseThreshold(warnAbove))}
          sx={{ mt: 1.5, maxWidth: 260 }}
          data-testid="warn-above"
          slotProps={{ htmlInput: { inputMode: 'decimal' } }}
        />
      )}
    </>
  );
}
