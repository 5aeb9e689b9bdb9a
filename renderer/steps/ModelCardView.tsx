/** The architecture card: what the model is, and what its KV cache costs per token and per sequence. */
import Alert from '@mui/material/Alert';
import Paper from '@mui/material/Paper';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableRow from '@mui/material/TableRow';
import Typography from '@mui/material/Typography';
import type { ModelCard } from '../../main/contract/index.ts';
import { formatBytes, formatCount, formatTokens } from '../../main/core/format.ts';
import { dtypeBytes } from '../charts/memory-data.ts';

function Row({
  label,
  value,
  hint,
  muted = false,
  testId,
}: {
  label: string;
  value: string;
  hint?: string;
  muted?: boolean;
  testId?: string;
}) {
  return (
    <TableRow data-testid={testId} sx={muted ? { '& td, & th': { color: 'text.disabled' } } : undefined}>
      <TableCell component="th" scope="row" sx={{ width: '40%' }}>
        {label}
        {hint && (
          <Typography variant="caption" color="text.secondary" component="div">
            {hint}
          </Typography>
        )}
      </TableCell>
      <TableCell>{value}</TableCell>
    </TableRow>
  );
}

export function ModelCardView({ card }: { card: ModelCard }) {
  const bytes = dtypeBytes(card.dtype);
  const grouped = card.kvHeads < card.heads;
  return (
    <Paper variant="outlined" sx={{ p: 2, mt: 2 }} data-testid="model-card">
      <Typography variant="h6">
        {card.modelType} · {formatCount(card.parameters)} parameters
      </Typography>
      <Typography variant="body2" color="text.secondary" sx={{ wordBreak: 'break-all' }}>
        {card.dir}
      </Typography>
      <Table size="small" sx={{ mt: 1 }}>
        <TableBody>
          <Row label="Layers" value={String(card.layers)} />
          <Row
            label="Attention heads / KV heads"
            value={`${card.heads} / ${card.kvHeads}`}
            hint={grouped ? 'query heads share key/value heads (grouped-query attention)' : undefined}
          />
          <Row label="Head dimension d" value={String(card.headDim)} hint="numbers per key or value vector" />
          <Row label="Hidden size" value={String(card.hiddenSize)} />
          <Row
            label="Positions"
            value={card.rope !== null ? `RoPE, θ = ${card.rope}` : 'learned (no RoPE)'}
            hint={`context up to ${formatTokens(card.maxPositions)} tokens`}
          />
          <Row label="Weights dtype" value={card.dtype} />
          <Row label="Parameters" value={card.parameters.toLocaleString('en-US')} />
          <Row
            label="KV cache per token"
            value={formatBytes(card.kvBytesPerToken)}
            hint={`2 (key, value) × ${card.layers} layers × ${card.kvHeads} KV heads × ${card.headDim} × ${bytes} bytes`}
          />
          {card.kvBytesPerSequence.map((s) => {
            // the engine lists fixed lengths; one past the model's context is arithmetic the model never meets
            const beyond = s.tokens > card.maxPositions;
            return (
              <Row
                key={s.tokens}
                testId="kv-sequence-row"
                muted={beyond}
                label={`KV cache of one ${formatTokens(s.tokens)}-token sequence`}
                value={formatBytes(s.bytes)}
                hint={
                  beyond
                    ? `beyond this model’s context of ${formatTokens(card.maxPositions)} tokens`
                    : undefined
                }
              />
            );
          })}
        </TableBody>
      </Table>
      <Typography variant="body2" color="text.secondary" sx={{ mt: 1 }}>
        While it generates, the model keeps a key and a value vector for every token it has read, in every
        layer: that is the KV cache, and it grows with the length of the text and the number of texts served
        at once. Rankwise shrinks each of those vectors.
      </Typography>
      {card.kvCompression && (
        <Alert severity="info" sx={{ mt: 1 }}>
          This checkpoint was already compressed by Rankwise (its cache was{' '}
          {formatBytes(card.kvCompression.originalKvBytesPerToken)} per token). Compress the original model
          instead to choose new ranks.
        </Alert>
      )}
    </Paper>
  );
}
