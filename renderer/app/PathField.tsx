/**
 * A path the engine will read or write: typed, or chosen with the desktop's native dialog
 * (`choosePath`) or, in browser mode, by walking the server's folders (`browse`).
 */
import Button from '@mui/material/Button';
import Stack from '@mui/material/Stack';
import TextField from '@mui/material/TextField';
import { useState } from 'react';
import type { PathPurpose } from '../../main/contract/index.ts';
import { useApi, useHostMode } from './api-context.tsx';
import { BrowseDialog } from './BrowseDialog.tsx';
import { dirName } from './paths.ts';

export function PathField({
  label,
  value,
  onChange,
  onCommit,
  purpose,
  testId,
  helperText,
  error,
  placeholder,
  fromChosen = (p) => p,
}: {
  label: string;
  value: string;
  onChange: (path: string) => void;
  /** Enter in the field, or a path chosen in a dialog. */
  onCommit?: (path: string) => void;
  purpose: PathPurpose;
  testId: string;
  helperText?: string;
  error?: boolean;
  placeholder?: string;
  /** Turns a chosen path into the field's value (an export goes into a new folder inside the chosen one). */
  fromChosen?: (path: string) => string;
}) {
  const api = useApi();
  const mode = useHostMode();
  const [browsing, setBrowsing] = useState(false);

  const chosen = (picked: string) => {
    setBrowsing(false);
    const path = fromChosen(picked);
    onChange(path);
    onCommit?.(path);
  };

  const choose = async () => {
    if (mode === 'browser') {
      setBrowsing(true);
      return;
    }
    const path = await api.choosePath(purpose).catch(() => null);
    if (path !== null) chosen(path);
  };

  return (
    <Stack direction="row" spacing={1} sx={{ alignItems: 'flex-start' }}>
      <TextField
        label={label}
        value={value}
        fullWidth
        size="small"
        error={error}
        helperText={helperText}
        placeholder={placeholder}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') onCommit?.(value);
        }}
        data-testid={testId}
        slotProps={{ htmlInput: { spellCheck: false } }}
      />
      <Button
        variant="outlined"
        onClick={() => void choose()}
        sx={{ whiteSpace: 'nowrap', minWidth: 'auto' }}
      >
        {mode === 'desktop' ? 'Choose…' : 'Browse…'}
      </Button>
      {mode === 'browser' && (
        <BrowseDialog
          open={browsing}
          target={purpose === 'data' ? 'file' : 'dir'}
          title={
            purpose === 'model'
              ? 'Choose the model folder'
              : purpose === 'export'
                ? 'Choose where the export goes'
                : 'Choose a text file'
          }
          start={value ? (purpose === 'data' ? dirName(value) : value) : undefined}
          onClose={() => setBrowsing(false)}
          onChoose={chosen}
        />
      )}
    </Stack>
  );
}
