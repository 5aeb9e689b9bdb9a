import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import LinearProgress from '@mui/material/LinearProgress';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { useApi } from '../app/api-context.tsx';
import { ErrorAlert } from '../app/ErrorAlert.tsx';
import { PathField } from '../app/PathField.tsx';
import { useTask } from '../app/use-task.ts';
import { ModelCardView } from './ModelCardView.tsx';
import type { StepProps } from './step-props.ts';

export function ModelStep({ state, dispatch }: StepProps) {
  const api = useApi();
  const task = useTask();
  const { path, card, loadedPath } = state.model;

  const load = async (p: string) => {
    const dir = p.trim();
    if (dir === '') return;
    const loaded = await task.run(() => api.inspect(dir));
    dispatch(loaded ? { type: 'modelLoaded', path: dir, card: loaded } : { type: 'modelFailed' });
  };

  const stale = card !== null && loadedPath !== path.trim();
  return (
    <Box data-testid="step-model">
      <Typography sx={{ mb: 2 }}>
        Choose the folder of a Hugging Face model: it holds <code>config.json</code>, the{' '}
        <code>.safetensors</code> weights and <code>tokenizer.json</code>. Llama, Mistral, Qwen2 and GPT-2
        models are supported.
      </Typography>
      <Stack direction="row" spacing={1} sx={{ alignItems: 'flex-start' }}>
        <Box sx={{ flex: 1 }}>
          <PathField
            label="Model folder"
            purpose="model"
            testId="model-path"
            value={path}
            onChange={(p) => dispatch({ type: 'modelPath', path: p })}
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
      {task.busy && <LinearProgress sx={{ mt: 2 }} />}
      {task.error && <ErrorAlert error={task.error} context="model" />}
      {card && !task.error && <ModelCardView card={card} />}
    </Box>
  );
}
