/**
 * What the smaller cache buys: bytes per token before and after, the memory saved for a context length
 * and batch the user sets, how many more sequences fit in a memory size the user sets, and the weights
 * against the cache.
 */
import Box from '@mui/material/Box';
import Paper from '@mui/material/Paper';
import Stack from '@mui/material/Stack';
import TextField from '@mui/material/TextField';
import Typography from '@mui/material/Typography';
import { useTheme } from '@mui/material/styles';
import { useMemo, useState } from 'react';
import { formatBytes, formatPercent, formatTokens, GiB } from '../../main/core/format.ts';
import { parseDecimal, parseWhole } from '../state/settings.ts';
import { Legend } from './AllocationChart.tsx';
import { memoryFigures, weightsVsCache } from './memory-data.ts';

const BAR_WIDTH = 560;

export function MemoryPanel({
  perToken,
  weightsBytes,
  maxPositions,
}: {
  perToken: { original: number; compressed: number };
  weightsBytes: number;
  /** The model's context: the default context length, up to 32K. */
  maxPositions: number;
}) {
  const theme = useTheme();
  const [context, setContext] = useState(String(Math.min(32768, maxPositions)));
  const [batch, setBatch] = useState('8');
  const [memory, setMemory] = useState('80');

  const contextTokens = parseWhole(context);
  const batchSize = parseWhole(batch);
  const memoryGiB = parseDecimal(memory);
  const valid = contextTokens > 0 && batchSize > 0 && memoryGiB > 0;
  const fig = useMemo(
    () =>
      valid
        ? memoryFigures({
            perToken,
            weightsBytes,
            contextTokens,
            batch: batchSize,
            memoryBytes: memoryGiB * GiB,
          })
        : null,
    [valid, perToken, weightsBytes, contextTokens, batchSize, memoryGiB],
  );
  const bars = fig ? weightsVsCache(fig, weightsBytes, BAR_WIDTH) : [];

  return (
    <Paper variant="outlined" sx={{ p: 2 }} data-testid="memory-panel">
      <Typography variant="h6" gutterBottom>
        Memory
      </Typography>
      <Typography data-testid="memory-per-token">
        KV cache per token: <strong>{formatBytes(perToken.original)}</strong> →{' '}
        <strong>{formatBytes(perToken.compressed)}</strong> (
        {formatPercent(perToken.original > 0 ? perToken.compressed / perToken.original : 1)} kept)
      </Typography>
      <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2} sx={{ my: 2 }}>
        <TextField
          label="Context length (tokens)"
          size="small"
          value={context}
          error={!(contextTokens > 0)}
          onChange={(e) => setContext(e.target.value)}
          data-testid="memory-context"
          slotProps={{ htmlInput: { inputMode: 'numeric' } }}
        />
        <TextField
          label="Sequences at once (batch)"
          size="small"
          value={batch}
          error={!(batchSize > 0)}
          onChange={(e) => setBatch(e.target.value)}
          data-testid="memory-batch"
          slotProps={{ htmlInput: { inputMode: 'numeric' } }}
        />
        <TextField
          label="Device memory (GiB)"
          size="small"
          value={memory}
          error={!(memoryGiB > 0)}
          onChange={(e) => setMemory(e.target.value)}
          data-testid="memory-size"
          slotProps={{ htmlInput: { inputMode: 'decimal' } }}
        />
      </Stack>
      {fig && (
        <>
          <Typography data-testid="memory-saved">
            {batchSize} × {formatTokens(contextTokens)} tokens: cache {formatBytes(fig.cache.original)} →{' '}
            {formatBytes(fig.cache.compressed)}, <strong>{formatBytes(fig.saved)} saved</strong>.
          </Typography>
          <Typography data-testid="memory-sequences">
            In {memoryGiB} GiB beside the weights, {fig.sequences.original.toLocaleString('en-US')} sequences
            of {formatTokens(contextTokens)} tokens fit before and{' '}
            {fig.sequences.compressed.toLocaleString('en-US')} after
            {fig.sequences.extra > 0 && (
              <>
                : <strong>{fig.sequences.extra.toLocaleString('en-US')} more</strong>
              </>
            )}
            .
          </Typography>
          {fig.sequences.original === 0 && weightsBytes >= memoryGiB * GiB && (
            <Typography color="warning.main">The weights alone do not fit in this memory.</Typography>
          )}
          <Box sx={{ mt: 1 }}>
            <svg
              viewBox={`0 0 ${BAR_WIDTH + 160} 64`}
              width="100%"
              role="img"
              aria-label={`Weights ${formatBytes(weightsBytes)} plus cache: ${formatBytes(fig.totals.original)} before, ${formatBytes(fig.totals.compressed)} after`}
              style={{ display: 'block', maxHeight: 90 }}
            >
              {bars.map((b, i) => (
                <g key={b.which} transform={`translate(80,${6 + i * 28})`}>
                  <text x={-8} y={14} textAnchor="end" fontSize={12} fill={theme.palette.text.primary}>
                    {b.which === 'original' ? 'Before' : 'After'}
                  </text>
                  <rect
                    x={b.weights.x}
                    width={b.weights.width}
                    height={20}
                    fill={theme.palette.text.disabled}
                  />
                  <rect x={b.cache.x} width={b.cache.width} height={20} fill={theme.palette.primary.main} />
                  <text
                    x={b.cache.x + b.cache.width + 6}
                    y={14}
                    fontSize={11}
                    fill={theme.palette.text.secondary}
                  >
                    {formatBytes(b.which === 'original' ? fig.totals.original : fig.totals.compressed)}
                  </text>
                </g>
              ))}
            </svg>
            <Stack direction="row" spacing={2} sx={{ justifyContent: 'center' }} aria-hidden="true">
              <Legend color={theme.palette.text.disabled} text={`Weights (${formatBytes(weightsBytes)})`} />
              <Legend color={theme.palette.primary.main} text={`KV cache, ${batchSize} sequences`} />
            </Stack>
          </Box>
        </>
      )}
    </Paper>
  );
}
