/** Light and dark themes; the charts take their colours from the palette, so both read the same. */
import { createTheme, type Theme } from '@mui/material/styles';

export type ThemeMode = 'light' | 'dark';

const STORAGE_KEY = 'rankwise.theme';

export function makeTheme(mode: ThemeMode): Theme {
  return createTheme({
    palette: {
      mode,
      // keys and values are told apart by colour in every chart: two hues that stay apart in both modes
      primary: { main: mode === 'light' ? '#1f5fbf' : '#7fb0ff' },
      secondary: { main: mode === 'light' ? '#b3541e' : '#ffb074' },
    },
    shape: { borderRadius: 8 },
  });
}

export function storedThemeMode(storage: Pick<Storage, 'getItem'> | undefined): ThemeMode | null {
  try {
    const v = storage?.getItem(STORAGE_KEY);
    return v === 'light' || v === 'dark' ? v : null;
  } catch {
    // storage can be disabled (privacy settings); the system preference then decides
    return null;
  }
}

export function storeThemeMode(storage: Pick<Storage, 'setItem'> | undefined, mode: ThemeMode): void {
  try {
    storage?.setItem(STORAGE_KEY, mode);
  } catch {
    // not remembered across reloads; nothing else depends on it
  }
}
