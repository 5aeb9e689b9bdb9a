/**
 * Error-rank curves, one per layer: how much error each layer's output takes as its cache shrinks. While
 * a job runs the curves fill in layer by layer; in review the chosen point of every layer is marked and
 * focusable (arrows move between layers, Enter selects). The geometry, colours and tooltip texts are
 * main/core/charts' profileChart, the same the HTML report prints.
 */
import Box from '@mui/material/Box';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { useTheme } from '@mui/material/styles';
import { useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { PROFILE_BOX } from '../../main/core/charts/geometry.ts';
import type { ChartPoint } from '../../main/core/charts/profile.ts';
import { AxisBottom, AxisLeft } from './Axes.tsx';
import { ChartTooltip, type TipState } from './ChartTooltip.tsx';
import { isSelectKey, nextIndex } from './keyboard.ts';
import { profileChartOf, type ProfileSeries } from './profile-data.ts';

const BOX = PROFILE_BOX;

export function ProfileChart({
  series,
  headDim,
  layers,
  selected = null,
  onSelect,
  bytesPerRank,
  testId = 'profile-chart',
}: {
  series: readonly ProfileSeries[];
  headDim: number;
  /** The model's layer count, to say how many curves are still to come. */
  layers: number;
  selected?: number | null;
  onSelect?: (layer: number) => void;
  /** Cache bytes per token of one rank of one side of a layer, for the tooltips. */
  bytesPerRank?: number;
  testId?: string;
}) {
  const theme = useTheme();
  const chart = useMemo(
    () => profileChartOf(series, headDim, BOX, bytesPerRank),
    [series, headDim, bytesPerRank],
  );
  const marked = chart.curves.filter((c) => c.chosen !== null);
  const [focusIndex, setFocusIndex] = useState(0);
  const [hovered, setHovered] = useState<number | null>(null);
  const [tip, setTip] = useState<TipState | null>(null);
  const refs = useRef<(SVGCircleElement | null)[]>([]);
  // the selected layer stands out as the hovered one does, when nothing is hovered
  const emphasised = hovered ?? selected;
  const tipId = `${testId}-tooltip`;

  const show = (layer: number, p: ChartPoint) => {
    setHovered(layer);
    setTip({ x: p.x, y: p.y, text: p.tip });
  };
  const hide = () => {
    setHovered(null);
    setTip(null);
  };
  const onKeyDown = (e: KeyboardEvent, i: number) => {
    const next = nextIndex(i, e.key, marked.length);
    if (next !== null) {
      e.preventDefault();
      setFocusIndex(next);
      refs.current[next]?.focus();
    } else if (isSelectKey(e.key)) {
      e.preventDefault();
      onSelect?.(marked[i].layer);
    } else if (e.key === 'Escape') {
      hide();
    }
  };

  return (
    <Box>
      <Box sx={{ position: 'relative' }}>
        <svg
          viewBox={`0 0 ${BOX.width} ${BOX.height}`}
          width="100%"
          role="group"
          aria-label={`Layer output error against the share of the layer's cache kept, one curve per layer, out of d = ${headDim} per head. Use the arrow keys to move between layers' chosen points.`}
          data-testid={testId}
          data-curves={series.length}
          style={{ display: 'block' }}
          onMouseLeave={hide}
        >
          <g transform={`translate(${BOX.margin.left},${BOX.margin.top})`}>
            <AxisLeft
              ticks={chart.yTicks}
              width={chart.inner.width}
              height={chart.inner.height}
              label={chart.yLabel}
            />
            <AxisBottom
              ticks={chart.xTicks}
              width={chart.inner.width}
              height={chart.inner.height}
              label={chart.xLabel}
            />
            {chart.curves.length === 0 && (
              <text
                x={chart.inner.width / 2}
                y={chart.inner.height / 2}
                textAnchor="middle"
                fontSize={13}
                fill={theme.palette.text.secondary}
              >
                Curves appear here as layers are measured
              </text>
            )}
            {chart.curves.map((c) => {
              const strong = emphasised === c.layer;
              const dimmed = emphasised !== null && !strong;
              return (
                <g
                  key={c.layer}
                  data-testid="profile-series"
                  data-layer={c.layer}
                  data-highlighted={strong ? 'true' : undefined}
                  opacity={dimmed ? 0.25 : 1}
                  onMouseEnter={() => setHovered(c.layer)}
                >
                  <path
                    d={c.d}
                    data-testid="profile-curve"
                    data-layer={c.layer}
                    fill="none"
                    stroke={c.colour}
                    strokeDasharray={c.dash || undefined}
                    strokeWidth={strong ? 3 : 1.5}
                  />
                  {c.points.map((p) => (
                    <circle
                      key={`${p.kRank}-${p.vRank}`}
                      cx={p.x}
                      cy={p.y}
                      r={strong ? 4 : 3}
                      fill={c.colour}
                      data-testid="profile-point"
                      data-layer={c.layer}
                      onMouseEnter={() => show(c.layer, p)}
                    />
                  ))}
                </g>
              );
            })}
            {marked.map((c, i) => {
              const p = c.chosen!;
              const isSelected = c.layer === selected;
              return (
                <circle
                  key={c.layer}
                  ref={(el) => {
                    refs.current[i] = el;
                  }}
                  cx={p.x}
                  cy={p.y}
                  r={isSelected || hovered === c.layer ? 7 : 5}
                  fill={c.colour}
                  stroke={theme.palette.text.primary}
                  strokeWidth={isSelected ? 3 : 1.5}
                  opacity={emphasised !== null && emphasised !== c.layer ? 0.35 : 1}
                  data-testid="chosen-point"
                  data-layer={c.layer}
                  tabIndex={i === focusIndex ? 0 : -1}
                  role="button"
                  aria-label={p.tip}
                  aria-pressed={isSelected}
                  aria-describedby={tip ? tipId : undefined}
                  className="rw-point"
                  style={{ cursor: onSelect ? 'pointer' : 'default' }}
                  onFocus={() => {
                    setFocusIndex(i);
                    show(c.layer, p);
                  }}
                  onBlur={hide}
                  onMouseEnter={() => show(c.layer, p)}
                  onKeyDown={(e) => onKeyDown(e, i)}
                  onClick={() => onSelect?.(c.layer)}
                />
              );
            })}
          </g>
        </svg>
        <ChartTooltip tip={tip} box={BOX} id={tipId} />
      </Box>
      <Stack
        direction="row"
        useFlexGap
        sx={{ flexWrap: 'wrap', justifyContent: 'center', columnGap: 2, rowGap: 0.5, mt: 0.5 }}
        data-testid="profile-legend"
      >
        {chart.curves.map((c) => (
          <Stack
            key={c.layer}
            direction="row"
            spacing={0.5}
            sx={{ alignItems: 'center', cursor: 'default' }}
            data-testid="legend-item"
            data-layer={c.layer}
            onMouseEnter={() => setHovered(c.layer)}
            onMouseLeave={() => setHovered(null)}
          >
            <svg width={26} height={10} aria-hidden="true">
              <line
                x1={1}
                x2={25}
                y1={5}
                y2={5}
                stroke={c.colour}
                strokeWidth={2.5}
                strokeDasharray={c.dash || undefined}
              />
            </svg>
            <Typography variant="caption" sx={{ fontWeight: emphasised === c.layer ? 700 : 400 }}>
              {c.name}
            </Typography>
          </Stack>
        ))}
        {marked.length > 0 && (
          <Typography variant="caption" color="text.secondary">
            ● chosen ranks
          </Typography>
        )}
        {series.length < layers && (
          <Typography variant="caption" color="text.secondary">
            {series.length} of {layers} layers so far
          </Typography>
        )}
      </Stack>
    </Box>
  );
}
