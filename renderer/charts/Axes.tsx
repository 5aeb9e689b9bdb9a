/** Axes drawn from precomputed ticks (the data modules own the scales), coloured by the theme. */
import { useTheme } from '@mui/material/styles';
import type { Tick } from './box.ts';

const FONT = 11;

export function AxisBottom({
  ticks,
  width,
  height,
  label,
}: {
  ticks: readonly Tick[];
  width: number;
  /** Inner height: the axis sits at its bottom. */
  height: number;
  label: string;
}) {
  const theme = useTheme();
  const color = theme.palette.text.secondary;
  return (
    <g transform={`translate(0,${height})`} aria-hidden="true">
      <line x1={0} x2={width} stroke={theme.palette.divider} />
      {ticks.map((t) => (
        <g key={t.value} transform={`translate(${t.at},0)`}>
          <line y2={4} stroke={color} />
          <text y={16} textAnchor="middle" fontSize={FONT} fill={color}>
            {t.label}
          </text>
        </g>
      ))}
      <text x={width / 2} y={34} textAnchor="middle" fontSize={FONT + 1} fill={theme.palette.text.primary}>
        {label}
      </text>
    </g>
  );
}

export function AxisLeft({
  ticks,
  width,
  height,
  label,
}: {
  ticks: readonly Tick[];
  /** Inner width: grid lines run across it. */
  width: number;
  height: number;
  label: string;
}) {
  const theme = useTheme();
  const color = theme.palette.text.secondary;
  return (
    <g aria-hidden="true">
      {ticks.map((t) => (
        <g key={t.value} transform={`translate(0,${t.at})`}>
          <line x2={width} stroke={theme.palette.divider} strokeDasharray="2 3" />
          <text x={-6} dy="0.32em" textAnchor="end" fontSize={FONT} fill={color}>
            {t.label}
          </text>
        </g>
      ))}
      <text
        transform={`translate(${-54},${height / 2}) rotate(-90)`}
        textAnchor="middle"
        fontSize={FONT + 1}
        fill={theme.palette.text.primary}
      >
        {label}
      </text>
    </g>
  );
}
