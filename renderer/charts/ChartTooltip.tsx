/**
 * A chart's tooltip: the numbers of the point under the pointer or the keyboard focus, placed over the
 * SVG at that point (SVG <title> alone shows nothing on focus and only after a delay on hover).
 */
import Paper from '@mui/material/Paper';
import Typography from '@mui/material/Typography';
import type { ChartBox } from './box.ts';

export interface TipState {
  /** Inner coordinates of the point. */
  x: number;
  y: number;
  text: string;
}

export function ChartTooltip({ tip, box, id }: { tip: TipState | null; box: ChartBox; id: string }) {
  if (!tip) return null;
  const left = ((box.margin.left + tip.x) / box.width) * 100;
  const top = ((box.margin.top + tip.y) / box.height) * 100;
  return (
    <Paper
      id={id}
      role="tooltip"
      elevation={4}
      data-testid="chart-tooltip"
      sx={{
        position: 'absolute',
        left: `${left}%`,
        top: `${top}%`,
        // above the point, flipped under it near the top and kept inside on the right
        transform: `translate(${left > 70 ? '-100%' : '-50%'}, ${top < 25 ? '12px' : 'calc(-100% - 12px)'})`,
        px: 1,
        py: 0.5,
        maxWidth: 320,
        pointerEvents: 'none',
        zIndex: 1,
      }}
    >
      <Typography variant="caption" component="div">
        {tip.text}
      </Typography>
    </Paper>
  );
}
