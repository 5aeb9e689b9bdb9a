/**
 * Error-rank curves, one per layer: how much error each layer's output takes as its cache shrinks. While
 * a job runs the curves fill in layer by layer; in review the chosen point of every layer is marked and
 * focusable (arrows move between layers, Enter selects).
 */
import Box from '@mui/material/Box';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { alpha, useTheme } from '@mui/material/styles';
import { useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { AxisBottom, AxisLeft } from './Axes.tsx';
import { Legend } from './AllocationChart.tsx';
import type { ChartBox } from './box.ts';
import { isSelectKey, nextIndex } from './keyboard.ts';
import { pointLabel, profileLayout, type ProfileSeries } from './profile-data.ts';

const BOX: ChartBox = { width: 760, height: 320, margin: { top: 12, right: 16, bottom: 44, left: 72 } };

export function ProfileChart({
  series,
  headDim,
  layers,
  selected = null,
  onSelect,
  testId = 'profile-chart',
}: {
  series: readonly ProfileSeries[];
  headDim: number;
  /** The model's layer count, to say how many curves are still to come. */
  layers: number;
  selected?: number | null;
  onSelect?: (layer: number) => void;
  testId?: string;
}) {
  const theme = useTheme();
  const layout = useMemo(() => profileLayout(series, BOX), [series]);
  const marked = series.filter((s) => s.chosen !== null);
  const [focusIndex, setFocusIndex] = useState(0);
  const refs = useRef<(SVGCircleElement | null)[]>([]);
  const curve = theme.palette.primary.main;
  const highlight = theme.palette.secondary.main;

  const onKeyDown = (e: KeyboardEvent, i: number) => {
    const next = nextIndex(i, e.key, marked.length);
    if (next !== null) {
      e.preventDefault();
      setFocusIndex(next);
      refs.current[next]?.focus();
    } else if (isSelectKey(e.key)) {
      e.preventDefault();
      onSelect?.(marked[i].layer);
    }
  };

  return (
    <Box>
      <svg
        viewBox={`0 0 ${BOX.width} ${BOX.height}`}
        width="100%"
        role="group"
        aria-label={
          `Error against cache kept, one curve per layer; ${series.length} of ${layers} layers measured.` +
          (marked.length > 0 ? ' Use the arrow keys to move between the chosen points.' : '')
        }
        data-testid={testId}
        data-curves={series.length}
        style={{ display: 'block', maxHeight: 360 }}
      >
        <g transform={`translate(${BOX.margin.left},${BOX.margin.top})`}>
          <AxisLeft
            ticks={layout.yTicks}
            width={layout.inner.width}
            height={layout.inner.height}
            label="Layer output error (relative, log)"
          />
          <AxisBottom
            ticks={layout.xTicks}
            width={layout.inner.width}
            height={layout.inner.height}
            label="Layer cache kept (% of its full size)"
          />
          {series.length === 0 && (
            <text
              x={layout.inner.width / 2}
              y={layout.inner.height / 2}
              textAnchor="middle"
              fontSize={13}
              fill={theme.palette.text.secondary}
            >
              Curves appear here as layers are measured
            </text>
          )}
          {series.map((s) => {
            const isSelected = s.layer === selected;
            return (
              <path
                key={s.layer}
                d={layout.path(s.front)}
                data-testid="profile-curve"
                data-layer={s.layer}
                fill="none"
                stroke={isSelected ? highlight : alpha(curve, series.length > 12 ? 0.35 : 0.6)}
                strokeWidth={isSelected ? 2.5 : 1.2}
              />
            );
          })}
          {marked.map((s, i) => {
            const p = s.chosen!;
            const at = layout.position(p);
            const isSelected = s.layer === selected;
            return (
              <circle
                key={s.layer}
                ref={(el) => {
                  refs.current[i] = el;
                }}
                cx={at.x}
                cy={at.y}
                r={isSelected ? 6 : 4}
                fill={isSelected ? highlight : theme.palette.background.paper}
                stroke={isSelected ? highlight : curve}
                strokeWidth={2}
                data-testid="chosen-point"
                data-layer={s.layer}
                tabIndex={i === focusIndex ? 0 : -1}
                role="button"
                aria-label={pointLabel(s, p, headDim)}
                aria-pressed={isSelected}
                className="rw-point"
                style={{ cursor: onSelect ? 'pointer' : 'default' }}
                onFocus={() => setFocusIndex(i)}
                onKeyDown={(e) => onKeyDown(e, i)}
                onClick={() => onSelect?.(s.layer)}
              />
            );
          })}
        </g>
      </svg>
      <Stack direction="row" spacing={2} sx={{ justifyContent: 'center', mt: 0.5 }} aria-hidden="true">
        <Legend color={curve} text="Best error at each size, per layer" />
        {selected !== null && <Legend color={highlight} text={`Layer ${selected}`} />}
        {series.length < layers && (
          <Typography variant="caption" color="text.secondary">
            {series.length} of {layers} layers so far
          </Typography>
        )}
      </Stack>
    </Box>
  );
}
