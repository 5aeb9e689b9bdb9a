/**
 * Browser mode's file chooser: a tab cannot open native dialogs, so the server lists its folders
 * (`api.browse`, confined to the folders it was started with) and the user walks them here.
 */
import Button from '@mui/material/Button';
import Dialog from '@mui/material/Dialog';
import DialogActions from '@mui/material/DialogActions';
import DialogContent from '@mui/material/DialogContent';
import DialogTitle from '@mui/material/DialogTitle';
import LinearProgress from '@mui/material/LinearProgress';
import List from '@mui/material/List';
import ListItemButton from '@mui/material/ListItemButton';
import ListItemIcon from '@mui/material/ListItemIcon';
import ListItemText from '@mui/material/ListItemText';
import Typography from '@mui/material/Typography';
import { useEffect, useState } from 'react';
import type { DirectoryListing } from '../../main/contract/index.ts';
import { useApi } from './api-context.tsx';
import { ErrorAlert } from './ErrorAlert.tsx';
import { formatBytes } from '../../main/core/format.ts';
import { FileIcon, FolderIcon } from './icons.tsx';
import { useTask } from './use-task.ts';

export type BrowseTarget = 'dir' | 'file';

export function BrowseDialog({
  open,
  target,
  title,
  start,
  onClose,
  onChoose,
}: {
  open: boolean;
  /** A folder (model, export destination) or a file (texts). */
  target: BrowseTarget;
  title: string;
  /** Where to start; the server's first folder when empty. */
  start?: string;
  onClose: () => void;
  onChoose: (path: string) => void;
}) {
  const api = useApi();
  const task = useTask();
  const [listing, setListing] = useState<DirectoryListing | null>(null);

  const go = (dir?: string) =>
    task.run(async () => {
      setListing(await api.browse(dir));
    });

  useEffect(() => {
    if (!open) return;
    // only when the dialog opens: later navigation is the user's
    void go(start || undefined);
  }, [open]);

  return (
    <Dialog open={open} onClose={onClose} fullWidth maxWidth="sm" data-testid="browse-dialog">
      <DialogTitle>{title}</DialogTitle>
      <DialogContent dividers>
        <Typography variant="body2" sx={{ wordBreak: 'break-all', mb: 1 }} data-testid="browse-dir">
          {listing?.dir ?? '…'}
        </Typography>
        {task.busy && <LinearProgress />}
        {task.error && <ErrorAlert error={task.error} context="model" />}
        <List dense sx={{ maxHeight: 360, overflow: 'auto' }}>
          {listing?.parent && (
            <ListItemButton onClick={() => void go(listing.parent!)}>
              <ListItemText primary="↰ Up one folder" />
            </ListItemButton>
          )}
          {listing?.entries.map((e) => (
            <ListItemButton
              key={e.path}
              data-testid="browse-entry"
              disabled={e.kind === 'file' && target === 'dir'}
              onClick={() => (e.kind === 'dir' ? void go(e.path) : onChoose(e.path))}
            >
              <ListItemIcon sx={{ minWidth: 36 }}>
                {e.kind === 'dir' ? <FolderIcon fontSize="small" /> : <FileIcon fontSize="small" />}
              </ListItemIcon>
              <ListItemText
                primary={e.name}
                secondary={e.kind === 'file' && e.bytes !== undefined ? formatBytes(e.bytes) : undefined}
              />
            </ListItemButton>
          ))}
          {listing && listing.entries.length === 0 && (
            <Typography variant="body2" color="text.secondary" sx={{ p: 1 }}>
              This folder is empty.
            </Typography>
          )}
        </List>
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Cancel</Button>
        {target === 'dir' && (
          <Button
            variant="contained"
            disabled={!listing}
            data-testid="browse-choose"
            onClick={() => listing && onChoose(listing.dir)}
          >
            Use this folder
          </Button>
        )}
      </DialogActions>
    </Dialog>
  );
}
