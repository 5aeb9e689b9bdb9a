import Alert from '@mui/material/Alert';
import Box from '@mui/material/Box';
import FormControlLabel from '@mui/material/FormControlLabel';
import Paper from '@mui/material/Paper';
import Radio from '@mui/material/Radio';
import RadioGroup from '@mui/material/RadioGroup';
import Slider from '@mui/material/Slider';
import Stack from '@mui/material/Stack';
import TextField from '@mui/material/TextField';
import ToggleButton from '@mui/material/ToggleButton';
import ToggleButtonGroup from '@mui/material/ToggleButtonGroup';
import Typography from '@mui/material/Typography';
import type { InputHTMLAttributes, ReactElement } from 'react';
import type { MethodId } from '../../main/contract/index.ts';
import {
  budgetToSlider,
  KEY_SPACE_TEXT,
  keySpacesFor,
  methodObstacle,
  METHODS,
  sliderToBudget,
} from '../state/methods.ts';
import { parseDecimal, parseKeep, parsePplIncrease } from '../state/settings.ts';
import type { KeySpaceSetting, TargetMode } from '../state/wizard.ts';
import type { Objective } from '../../main/core/kv.ts';
import { EstimatePanel } from './EstimatePanel.tsx';
import type { StepProps } from './step-props.ts';

/** Radio's input slot is typed without data-* attributes, which React passes through all the same. */
const testId = (id: string) => ({ 'data-testid': id }) as InputHTMLAttributes<HTMLInputElement>;

const BUDGET_MARKS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2].map((b) => ({
  value: budgetToSlider(b),
  label: String(b),
}));

function MethodChoice({ state, dispatch }: StepProps) {
  const model = state.model.card ?? null;
  const choose = (method: MethodId) => {
    const allowed = keySpacesFor(method, model);
    const keySpace = allowed.includes(state.method.keySpace) ? state.method.keySpace : 'auto';
    dispatch({ type: 'methodField', patch: { method, keySpace } });
  };
  return (
    <RadioGroup
      value={state.method.method}
      onChange={(_, v) => choose(v as MethodId)}
      aria-label="Compression method"
    >
      <Stack spacing={1}>
        {METHODS.map((m) => {
          const selected = m.id === state.method.method;
          const obstacle = methodObstacle(m.id, model);
          return (
            <Paper
              key={m.id}
              variant="outlined"
              sx={{
                p: 1.5,
                borderColor: selected ? 'primary.main' : undefined,
                borderWidth: selected ? 2 : 1,
              }}
            >
              <FormControlLabel
                value={m.id}
                disabled={obstacle !== null}
                control={<Radio slotProps={{ input: testId(`method-${m.id}`) }} />}
                label={
                  <Typography variant="subtitle1">
                    {m.name}{' '}
                    {m.speed === 3 && (
                      <Typography component="span" variant="caption">
                        · slow
                      </Typography>
                    )}
                  </Typography>
                }
              />
              {obstacle !== null && (
                <Alert
                  severity={selected ? 'error' : 'info'}
                  sx={{ my: 0.5 }}
                  data-testid={`method-obstacle-${m.id}`}
                >
                  Not available for this model: {obstacle}.
                </Alert>
              )}
              <Typography variant="body2">{m.plain}</Typography>
              <Typography variant="body2" sx={{ mt: 0.5 }}>
                <strong>Trade-off: </strong>
                {m.tradeOff}
              </Typography>
              {selected && (
                <Typography variant="body2" color="text.secondary" sx={{ mt: 0.5 }}>
                  <strong>In detail: </strong>
                  {m.technical}
                </Typography>
              )}
            </Paper>
          );
        })}
      </Stack>
    </RadioGroup>
  );
}

const OBJECTIVE_TEXT: Record<Objective, { label: string; help: string }> = {
  e2e: {
    label: 'Predicted perplexity',
    help:
      'Measures how much compressing each layer changes the model’s predictions, and sizes the layers so ' +
      'that perplexity is predicted to rise least. Takes some extra runs of the model.',
  },
  layer: {
    label: 'Layer errors',
    help: 'Sizes the layers so that their output errors add up to the least. Quicker: no extra runs.',
  },
};

function ObjectiveChoice({ state, dispatch }: StepProps) {
  const objective = state.method.objective;
  return (
    <Box sx={{ mt: 1.5 }}>
      <Stack direction="row" spacing={1.5} sx={{ alignItems: 'center' }}>
        <Typography variant="body2" id="objective-label">
          Choose each layer’s size by
        </Typography>
        <ToggleButtonGroup
          exclusive
          size="small"
          value={objective}
          aria-labelledby="objective-label"
          onChange={(_, o: Objective | null) =>
            o && dispatch({ type: 'methodField', patch: { objective: o } })
          }
        >
          {(['e2e', 'layer'] as const).map((o) => (
            <ToggleButton key={o} value={o} data-testid={`objective-${o}`}>
              {OBJECTIVE_TEXT[o].label}
            </ToggleButton>
          ))}
        </ToggleButtonGroup>
      </Stack>
      <Typography variant="body2" color="text.secondary" sx={{ mt: 0.5 }}>
        {OBJECTIVE_TEXT[objective].help}
      </Typography>
    </Box>
  );
}

function BudgetTarget({ state, dispatch }: StepProps) {
  const m = state.method;
  const budget = parseDecimal(m.budget);
  return (
    <Box>
      <Typography variant="body2" color="text.secondary">
        How much each layer’s output may change, on average: 0.05 means by about 5 %. Rankwise then keeps as
        little cache as it can within that. Smaller budgets keep more of the cache.
      </Typography>
      <Stack direction="row" spacing={3} sx={{ alignItems: 'center', mt: 1 }}>
        <Slider
          aria-label="Error budget (log scale)"
          min={0}
          max={1}
          step={0.01}
          marks={BUDGET_MARKS}
          value={budget > 0 ? budgetToSlider(budget) : 0}
          valueLabelDisplay="auto"
          valueLabelFormat={(v) => String(sliderToBudget(v))}
          onChange={(_, v) =>
            dispatch({ type: 'methodField', patch: { budget: String(sliderToBudget(v as number)) } })
          }
          sx={{ flex: 1, mx: 2 }}
        />
        <TextField
          label="Budget"
          size="small"
          value={m.budget}
          error={!(budget > 0)}
          onChange={(e) => dispatch({ type: 'methodField', patch: { budget: e.target.value } })}
          data-testid="budget-input"
          slotProps={{ htmlInput: { inputMode: 'decimal' } }}
          sx={{ width: 120 }}
        />
      </Stack>
    </Box>
  );
}

function MemoryTarget({ state, dispatch }: StepProps) {
  const m = state.method;
  const keep = parseKeep(m.keep);
  return (
    <Box>
      <Typography variant="body2" color="text.secondary">
        How much of the KV cache to keep: 50 % halves the memory each token takes. Rankwise then chooses each
        layer’s size so that as little quality as possible is lost, by the measure chosen below.
      </Typography>
      <Stack direction="row" spacing={3} sx={{ alignItems: 'center', mt: 1 }}>
        <Slider
          aria-label="Cache kept (per cent)"
          min={5}
          max={100}
          step={1}
          marks={[25, 50, 75, 100].map((v) => ({ value: v, label: `${v} %` }))}
          value={keep > 0 ? Math.max(5, Math.round(keep * 100)) : 5}
          valueLabelDisplay="auto"
          onChange={(_, v) => dispatch({ type: 'methodField', patch: { keep: String(v) } })}
          sx={{ flex: 1, mx: 2 }}
        />
        <TextField
          label="Keep"
          size="small"
          value={m.keep}
          error={Number.isNaN(keep)}
          helperText={Number.isNaN(keep) ? '50 or 0.5' : `${+(keep * 100).toFixed(1)} % of the cache`}
          onChange={(e) => dispatch({ type: 'methodField', patch: { keep: e.target.value } })}
          data-testid="fraction-input"
          slotProps={{ htmlInput: { inputMode: 'decimal' } }}
          sx={{ width: 150 }}
        />
      </Stack>
      <ObjectiveChoice state={state} dispatch={dispatch} />
    </Box>
  );
}

function PerplexityTarget({ state, dispatch }: StepProps) {
  const m = state.method;
  const increase = parsePplIncrease(m.pplIncrease);
  return (
    <Box>
      <Typography variant="body2" color="text.secondary">
        The smallest cache whose perplexity is predicted to rise by at most this much, from probes of each
        layer’s effect. 5 means 5 %; a number below 1 is a fraction (0.05 is also 5 %).
      </Typography>
      <TextField
        label="Perplexity increase"
        size="small"
        value={m.pplIncrease}
        error={Number.isNaN(increase)}
        helperText={
          Number.isNaN(increase) ? '5 or 0.05' : `perplexity up to +${+(increase * 100).toFixed(2)} %`
        }
        onChange={(e) => dispatch({ type: 'methodField', patch: { pplIncrease: e.target.value } })}
        data-testid="ppl-input"
        slotProps={{ htmlInput: { inputMode: 'decimal' } }}
        sx={{ width: 200, mt: 1.5 }}
      />
    </Box>
  );
}

const TARGET_VIEWS: Record<TargetMode, (props: StepProps) => ReactElement> = {
  budget: BudgetTarget,
  memory: MemoryTarget,
  perplexity: PerplexityTarget,
};

function TargetChoice({ state, dispatch }: StepProps) {
  const m = state.method;
  const View = TARGET_VIEWS[m.mode];
  return (
    <Box sx={{ mt: 3 }}>
      <Typography variant="h6">How much to compress</Typography>
      <ToggleButtonGroup
        exclusive
        size="small"
        value={m.mode}
        onChange={(_, mode: TargetMode | null) => mode && dispatch({ type: 'methodField', patch: { mode } })}
        sx={{ my: 1 }}
      >
        <ToggleButton value="budget" data-testid="mode-budget">
          Error budget
        </ToggleButton>
        <ToggleButton value="memory" data-testid="mode-memory">
          Memory target
        </ToggleButton>
        <ToggleButton value="perplexity" data-testid="mode-perplexity">
          Perplexity increase
        </ToggleButton>
      </ToggleButtonGroup>
      <View state={state} dispatch={dispatch} />
    </Box>
  );
}

function KeySpaceChoice({ state, dispatch }: StepProps) {
  const card = state.model.card;
  if (!card || card.rope === null) return null;
  const options = keySpacesFor(state.method.method, card);
  return (
    <Box sx={{ mt: 3 }}>
      <Typography variant="h6">Key space</Typography>
      <Typography variant="body2" color="text.secondary">
        This model rotates keys by their position (RoPE). Keys can be compressed before or after that
        rotation.
      </Typography>
      <ToggleButtonGroup
        exclusive
        size="small"
        value={state.method.keySpace}
        onChange={(_, keySpace: KeySpaceSetting | null) =>
          keySpace && dispatch({ type: 'methodField', patch: { keySpace } })
        }
        sx={{ my: 1 }}
      >
        {options.map((k) => (
          <ToggleButton key={k} value={k} data-testid={`keyspace-${k}`}>
            {KEY_SPACE_TEXT[k].label}
          </ToggleButton>
        ))}
      </ToggleButtonGroup>
      <Typography variant="body2">{KEY_SPACE_TEXT[state.method.keySpace].help}</Typography>
    </Box>
  );
}

export function MethodStep(props: StepProps) {
  return (
    <Box data-testid="step-method">
      <Typography variant="h6" gutterBottom>
        Method
      </Typography>
      <MethodChoice {...props} />
      <TargetChoice {...props} />
      <KeySpaceChoice {...props} />
      <EstimatePanel state={props.state} dispatch={props.dispatch} />
    </Box>
  );
}
