/**
 * Key and value ranks per layer. Each layer is one focusable group (a roving tab stop): arrows move
 * between layers, Enter or Space (or a click) selects the layer for editing.
 */
import Box from '@mui/material/Box';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { alpha, useTheme } from '@mui/material/styles';
import { useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { ALLOCATION_BOX } from '../../main/core/charts/geometry.ts';
import { AxisBottom, AxisLeft } from './Axes.tsx';
import { allocationLayout, type LayerRanks } from './allocation-data.ts';
import { ChartTooltip, type TipState } from './ChartTooltip.tsx';
import { isSelectKey, nextIndex } from './keyboard.ts';

const NONE: ReadonlySet<number> = new Set();
// the report's box: the same bars, scaled to the width each has
const BOX = ALLOCATION_BOX;

export function AllocationChart({
  layers,
  headDim,
  edited = NONE,
  selected = null,
  onSelect,
  bytesPerRank,
}: {
  layers: readonly LayerRanks[];
  headDim: number;
  edited?: ReadonlySet<number>;
  selected?: number | null;
  onSelect?: (layer: number) => void;
  /** Cache bytes per token of one rank of one side of a layer, for the tooltips. */
  bytesPerRank?: number;
}) {
  const theme = useTheme();
  const layout = useMemo(
    () => allocationLayout(layers, headDim, BOX, edited, bytesPerRank),
    [layers, headDim, edited, bytesPerRank],
  );
  const [focusIndex, setFocusIndex] = useState(0);
  const [tip, setTip] = useState<TipState | null>(null);
  const showTip = (g: (typeof layout.groups)[number]) =>
    setTip({ x: g.x + g.width / 2, y: Math.min(g.bars[0].y, g.bars[1].y), text: g.label });
  const refs = useRef<(SVGGElement | null)[]>([]);
  const colors = { k: theme.palette.primary.main, v: theme.palette.secondary.main };

  const onKeyDown = (e: KeyboardEvent, i: number) => {
    const next = nextIndex(i, e.key, layout.groups.length);
    if (next !== null) {
      e.preventDefault();
      setFocusIndex(next);
      refs.current[next]?.focus();
    } else if (isSelectKey(e.key)) {
      e.preventDefault();
      onSelect?.(layout.groups[i].layer);
    }
  };

  return (
    <Box sx={{ position: 'relative' }}>
      <svg
        onMouseLeave={() => setTip(null)}
        viewBox={`0 0 ${BOX.width} ${BOX.height}`}
        width="100%"
        role="group"
        aria-label={`Ranks per layer, keys and values, out of ${headDim} per head. Use the arrow keys to move between layers and Enter to edit one.`}
        data-testid="allocation-chart"
        style={{ display: 'block' }}
      >
        <g transform={`translate(${BOX.margin.left},${BOX.margin.top})`}>
          <AxisLeft
            ticks={layout.yTicks}
            width={layout.inner.width}
            height={layout.inner.height}
            label={`Rank per head (of d = ${headDim})`}
          />
          <AxisBottom
            ticks={layout.xTicks}
            width={layout.inner.width}
            height={layout.inner.height}
            label="Layer"
          />
          {layout.groups.map((g, i) => {
            const isSelected = selected === g.layer;
            return (
              <g
                key={g.layer}
                ref={(el) => {
                  refs.current[i] = el;
                }}
                transform={`translate(${g.x},0)`}
                data-testid="layer-group"
                data-layer={g.layer}
                data-k-rank={g.kRank}
                data-v-rank={g.vRank}
                data-edited={g.edited ? 'true' : undefined}
                tabIndex={i === focusIndex ? 0 : -1}
                role="button"
                aria-label={g.label}
                aria-pressed={isSelected}
                onFocus={() => {
                  setFocusIndex(i);
                  showTip(g);
                }}
                onBlur={() => setTip(null)}
                onMouseEnter={() => showTip(g)}
                onKeyDown={(e) => onKeyDown(e, i)}
                onClick={() => {
                  setFocusIndex(i);
                  onSelect?.(g.layer);
                }}
                style={{ cursor: onSelect ? 'pointer' : 'default', outline: 'none' }}
                className="rw-layer"
              >
                {/* the whole column is the click target, not only the (possibly short) bars */}
                <rect
                  x={-2}
                  y={0}
                  width={g.width + 4}
                  height={layout.inner.height}
                  fill={isSelected ? alpha(theme.palette.text.primary, 0.08) : 'transparent'}
                  stroke={isSelected ? theme.palette.text.primary : 'none'}
                  strokeWidth={1}
                  className="rw-focus-ring"
                />
                {g.bars.map((b) => (
                  <rect
                    key={b.side}
                    x={b.x}
                    y={b.y}
                    width={b.width}
                    height={b.height}
                    fill={colors[b.side]}
                  />
                ))}
                {g.edited && (
                  <text
                    x={g.width / 2}
                    y={-2}
                    textAnchor="middle"
                    fontSize={12}
                    fill={theme.palette.text.primary}
                  >
                    ✎
                  </text>
                )}
              </g>
            );
          })}
        </g>
      </svg>
      <ChartTooltip tip={tip} box={BOX} id="allocation-tooltip" />
      <Stack direction="row" spacing={2} sx={{ justifyContent: 'center', mt: 0.5 }} aria-hidden="true">
        <Legend color={colors.k} text="Key rank" />
        <Legend color={colors.v} text="Value rank" />
        {edited.size > 0 && (
          <Typography variant="caption" color="text.secondary">
            ✎ set by hand
          </Typography>
        )}
      </Stack>
    </Box>
  );
}

export function Legend({ color, text }: { color: string; text: string }) {
  return (
    <Stack direction="row" spacing={0.5} sx={{ alignItems: 'center' }}>
      <Box sx={{ width: 12, height: 12, bgcolor: color, borderRadius: 0.5 }} />
      <Typography variant="caption">{text}</Typography>
    </Stack>
  );
}
