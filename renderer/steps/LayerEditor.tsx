/**
 * Setting one layer's ranks by hand, among the points its profile measured: the error and the memory of
 * the choice show before it is applied, and `reallocate` makes it part of the allocation at once.
 */
import Button from '@mui/material/Button';
import Dialog from '@mui/material/Dialog';
import DialogActions from '@mui/material/DialogActions';
import DialogContent from '@mui/material/DialogContent';
import DialogTitle from '@mui/material/DialogTitle';
import MenuItem from '@mui/material/MenuItem';
import Stack from '@mui/material/Stack';
import TextField from '@mui/material/TextField';
import Typography from '@mui/material/Typography';
import { useEffect, useState } from 'react';
import type { ErrorInfo, ProfilePoint } from '../../main/contract/index.ts';
import { ErrorAlert } from '../app/ErrorAlert.tsx';
import { formatBytes, formatError, formatPercent } from '../../main/core/format.ts';
import type { LayerRanks } from '../charts/allocation-data.ts';

export function distinctRanks(points: readonly ProfilePoint[], side: 'kRank' | 'vRank'): number[] {
  return [...new Set(points.map((p) => p[side]))].sort((a, b) => a - b);
}

/** The cache per token after moving one layer from `from` to `to`, everything else unchanged. */
export function perTokenAfter(
  compressed: number,
  unitBytes: number,
  from: { kRank: number; vRank: number },
  to: { kRank: number; vRank: number },
): number {
  return compressed + (to.kRank + to.vRank - from.kRank - from.vRank) * unitBytes;
}

function RankSelect({
  label,
  value,
  options,
  testId,
  onChange,
}: {
  label: string;
  value: number;
  options: number[];
  testId: string;
  onChange: (v: number) => void;
}) {
  return (
    <TextField
      select
      label={label}
      size="small"
      value={value}
      onChange={(e) => onChange(Number(e.target.value))}
      data-testid={testId}
      sx={{ minWidth: 140 }}
    >
      {options.map((r) => (
        <MenuItem key={r} value={r}>
          {r}
        </MenuItem>
      ))}
    </TextField>
  );
}

export function LayerEditor({
  layer,
  points,
  headDim,
  unitBytes,
  perToken,
  edited,
  busy,
  error,
  onApply,
  onReset,
  onClose,
}: {
  layer: LayerRanks | null;
  points: readonly ProfilePoint[];
  headDim: number;
  /** Cache bytes per token of one rank of one side of one layer (all its KV heads). */
  unitBytes: number;
  perToken: { original: number; compressed: number };
  edited: boolean;
  busy: boolean;
  error: ErrorInfo | null;
  onApply: (kRank: number, vRank: number) => void;
  onReset: () => void;
  onClose: () => void;
}) {
  const [k, setK] = useState(layer?.kRank ?? 0);
  const [v, setV] = useState(layer?.vRank ?? 0);
  useEffect(() => {
    if (layer) {
      setK(layer.kRank);
      setV(layer.vRank);
    }
  }, [layer]);
  if (!layer) return null;

  const point = points.find((p) => p.kRank === k && p.vRank === v);
  const after = perTokenAfter(perToken.compressed, unitBytes, layer, { kRank: k, vRank: v });
  return (
    <Dialog open onClose={onClose} data-testid="layer-editor" aria-labelledby="layer-editor-title">
      <DialogTitle id="layer-editor-title">Layer {layer.layer}: set its ranks</DialogTitle>
      <DialogContent>
        <Typography variant="body2" color="text.secondary" sx={{ mb: 2 }}>
          Ranks are per head, out of {headDim}. Higher ranks keep more of this layer’s cache and change its
          output less.
        </Typography>
        <Stack direction="row" spacing={2}>
          <RankSelect
            label="Key rank"
            value={k}
            options={distinctRanks(points, 'kRank')}
            testId="edit-k-rank"
            onChange={setK}
          />
          <RankSelect
            label="Value rank"
            value={v}
            options={distinctRanks(points, 'vRank')}
            testId="edit-v-rank"
            onChange={setV}
          />
        </Stack>
        <Typography sx={{ mt: 2 }} data-testid="edit-preview">
          Layer output error: {formatError(layer.error)} →{' '}
          <strong>{point ? formatError(point.error) : 'not measured'}</strong>
          <br />
          Whole cache per token: {formatBytes(perToken.compressed)} → <strong>{formatBytes(after)}</strong> (
          {formatPercent(after / perToken.original)} of the original)
        </Typography>
        {error && <ErrorAlert error={error} context="review" />}
      </DialogContent>
      <DialogActions>
        {edited && (
          <Button onClick={onReset} disabled={busy} data-testid="edit-reset">
            Back to the job’s choice
          </Button>
        )}
        <Button onClick={onClose}>Close</Button>
        <Button
          variant="contained"
          data-testid="edit-apply"
          // the current ranks too: applying them pins the layer where it is
          disabled={busy || !point}
          onClick={() => onApply(k, v)}
        >
          Apply
        </Button>
      </DialogActions>
    </Dialog>
  );
}
