import Alert from '@mui/material/Alert';
import AlertTitle from '@mui/material/AlertTitle';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import LinearProgress from '@mui/material/LinearProgress';
import List from '@mui/material/List';
import ListItemButton from '@mui/material/ListItemButton';
import ListItemText from '@mui/material/ListItemText';
import ListSubheader from '@mui/material/ListSubheader';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { useEffect, useRef, useState, type DragEvent } from 'react';
import type { LocalModel, LocalModels } from '../../main/contract/index.ts';
import { useApi, useHostMode } from '../app/api-context.tsx';
import { ErrorAlert } from '../app/ErrorAlert.tsx';
import { hubIdGuidance, hubRepoId } from '../app/errors.ts';
import { PathField } from '../app/PathField.tsx';
import { baseName } from '../app/paths.ts';
import { useTask } from '../app/use-task.ts';
import { ModelCardView } from './ModelCardView.tsx';
import type { StepProps } from './step-props.ts';

/**
 * The listed folders a dropped folder's name may be: a page learns only the name of what is dropped
 * (`webkitGetAsEntry`, `File.name`), never where it lies, so a drop is matched against the folders the
 * engine listed: a Hugging Face repository (`models--org--name`, or `name`), a snapshot (its revision),
 * or a recent job's folder.
 */
export function matchDropped(name: string, models: LocalModels | null): LocalModel[] {
  if (!models || name === '') return [];
  const hub = models.huggingFace.filter((m) => {
    const [org, repo] = m.name.includes('/') ? m.name.split('/') : ['', m.name];
    const folder = org ? `models--${org}--${repo}` : `models--${repo}`;
    return name === folder || name === repo || name === m.revision;
  });
  const recent = models.recent.filter((m) => baseName(m.path) === name);
  const bundled = models.bundled && baseName(models.bundled.path) === name ? [models.bundled] : [];
  // a repository's newest snapshot comes first in the list; that is the one a drop of the repository means
  const seen = new Set<string>();
  return [...hub, ...recent, ...bundled].filter((m) => !seen.has(m.path) && seen.add(m.path));
}

/** The name of the folder (or file) a drop carries. */
function droppedName(e: DragEvent): string {
  const item = e.dataTransfer.items?.[0];
  const entry = item?.webkitGetAsEntry?.();
  if (entry) return entry.name;
  return e.dataTransfer.files?.[0]?.name ?? '';
}

function LocalModelList({
  models,
  onPick,
  disabled,
}: {
  models: LocalModels;
  onPick: (m: LocalModel) => void;
  disabled: boolean;
}) {
  const item = (m: LocalModel) => (
    <ListItemButton
      key={m.path}
      dense
      disabled={disabled}
      data-testid="local-model"
      onClick={() => onPick(m)}
    >
      <ListItemText
        primary={m.name}
        secondary={m.revision ? `revision ${m.revision.slice(0, 12)} · ${m.path}` : m.path}
        slotProps={{ secondary: { sx: { wordBreak: 'break-all' } } }}
      />
    </ListItemButton>
  );
  const empty = !models.bundled && models.huggingFace.length === 0 && models.recent.length === 0;
  return (
    <Box data-testid="local-models" sx={{ mt: 2 }}>
      {!empty && (
        <List
          dense
          sx={{ maxHeight: 280, overflow: 'auto', border: 1, borderColor: 'divider', borderRadius: 1 }}
        >
          {models.bundled && <ListSubheader>Bundled with Rankwise (a small real model to try)</ListSubheader>}
          {models.bundled && item(models.bundled)}
          {models.huggingFace.length > 0 && (
            <ListSubheader>Downloaded from Hugging Face ({models.hubCache})</ListSubheader>
          )}
          {models.huggingFace.map(item)}
          {models.recent.length > 0 && <ListSubheader>Used in recent jobs</ListSubheader>}
          {models.recent.map(item)}
        </List>
      )}
      {(models.hidden ?? 0) > 0 && (
        <Typography variant="body2" color="text.secondary" sx={{ mt: 1 }} data-testid="local-models-hidden">
          {models.hidden} more model folder{models.hidden === 1 ? ' lies' : 's lie'} outside the folders this
          server may use
          {models.hubCache ? (
            <>
              ; to list the Hugging Face cache, start it with <code>--root {models.hubCache}</code>
            </>
          ) : null}
          .
        </Typography>
      )}
    </Box>
  );
}

export function ModelStep({ state, dispatch }: StepProps) {
  const api = useApi();
  const mode = useHostMode();
  const task = useTask();
  const { path, card, loadedPath } = state.model;
  const [models, setModels] = useState<LocalModels | null>(null);
  // the list arrives later: it must see the field as it is then, not as it was when the request left
  const pathRef = useRef(path);
  pathRef.current = path;
  const [attempted, setAttempted] = useState('');
  const [dropNote, setDropNote] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);

  useEffect(() => {
    let current = true;
    // the list is a convenience: a host that cannot answer leaves the field and Browse as they were
    api.listModels().then(
      (m) => {
        if (!current) return;
        setModels(m);
        // the bundled model is the default: a first visit starts with it in the field, one click from its card
        if (m.bundled && pathRef.current.trim() === '') dispatch({ type: 'modelPath', path: m.bundled.path });
      },
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [api]);

  const load = async (p: string) => {
    const dir = p.trim();
    if (dir === '') return;
    setAttempted(dir);
    setDropNote(null);
    const loaded = await task.run(() => api.inspect(dir));
    dispatch(loaded ? { type: 'modelLoaded', path: dir, card: loaded } : { type: 'modelFailed' });
  };

  const pick = (p: string) => {
    dispatch({ type: 'modelPath', path: p });
    void load(p);
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    const name = droppedName(e);
    const found = matchDropped(name, models);
    if (found.length > 0) return pick(found[0].path);
    const how = mode === 'desktop' ? 'Choose…' : 'Browse…';
    setDropNote(
      `${mode === 'desktop' ? 'The app' : 'A browser'} is not told where a dropped folder lies on disk, and ` +
        `${name ? `“${name}”` : 'it'} is not among the folders listed here. Use ${how} to pick it` +
        (mode === 'browser' ? ' inside the folders this server may use.' : '.'),
    );
  };

  const hubId = task.error ? hubRepoId(attempted) : null;
  const hub = hubId ? hubIdGuidance(hubId) : null;
  const stale = card !== null && loadedPath !== path.trim();
  return (
    <Box
      data-testid="step-model"
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
      sx={{ outline: dragging ? '2px dashed' : 'none', outlineColor: 'primary.main', borderRadius: 1 }}
    >
      <Typography sx={{ mb: 2 }}>
        Choose the folder of a Hugging Face model: it holds <code>config.json</code>, the{' '}
        <code>.safetensors</code> weights and <code>tokenizer.json</code>. Llama (2 and 3.x), Mistral, Qwen2,
        Qwen3, Phi-3, Gemma 2 and GPT-2 models are supported. Pick one below, type its path, or drop its
        folder here.
      </Typography>
      <Stack direction="row" spacing={1} sx={{ alignItems: 'flex-start' }}>
        <Box sx={{ flex: 1 }}>
          <PathField
            label="Model folder"
            purpose="model"
            testId="model-path"
            value={path}
            onChange={(p) => {
              // an error is about what was typed before: editing (or clearing) the field retires it
              task.clear();
              setDropNote(null);
              dispatch({ type: 'modelPath', path: p });
            }}
            onCommit={(p) => void load(p)}
            helperText={stale ? 'The folder changed: inspect it again to continue.' : undefined}
          />
        </Box>
        <Button
          variant="contained"
          data-testid="model-load"
          disabled={task.busy || path.trim() === ''}
          onClick={() => void load(path)}
        >
          Inspect
        </Button>
      </Stack>
      {models && <LocalModelList models={models} onPick={(m) => pick(m.path)} disabled={task.busy} />}
      {dropNote && (
        <Alert severity="info" sx={{ mt: 2 }} data-testid="drop-message" onClose={() => setDropNote(null)}>
          {dropNote}
        </Alert>
      )}
      {task.busy && <LinearProgress sx={{ mt: 2 }} />}
      {task.error && hub && (
        <Alert severity="info" sx={{ my: 2 }} data-testid="hub-id-advice">
          <AlertTitle>{hub.title}</AlertTitle>
          <Typography variant="body2">{hub.advice}</Typography>
          {hub.commands.map((c) => (
            <Typography key={c} variant="body2" component="pre" sx={{ fontFamily: 'monospace', my: 0.5 }}>
              {c}
            </Typography>
          ))}
        </Alert>
      )}
      {task.error && !hub && <ErrorAlert error={task.error} context="model" />}
      {card && !task.error && <ModelCardView card={card} />}
    </Box>
  );
}
