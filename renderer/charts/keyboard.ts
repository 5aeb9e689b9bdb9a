/**
 * Keyboard movement across a chart's layers (a roving tab stop: one focusable item at a time, arrows move
 * it). Left/Up go to the previous layer, Right/Down to the next, Home/End to the ends; Enter or Space
 * selects.
 */

export function nextIndex(current: number, key: string, count: number): number | null {
  if (count <= 0) return null;
  switch (key) {
    case 'ArrowRight':
    case 'ArrowDown':
      return Math.min(count - 1, current + 1);
    case 'ArrowLeft':
    case 'ArrowUp':
      return Math.max(0, current - 1);
    case 'Home':
      return 0;
    case 'End':
      return count - 1;
    default:
      return null;
  }
}

export function isSelectKey(key: string): boolean {
  return key === 'Enter' || key === ' ';
}
