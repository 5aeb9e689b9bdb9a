import Alert from '@mui/material/Alert';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import CircularProgress from '@mui/material/CircularProgress';
import Paper from '@mui/material/Paper';
import Slider from '@mui/material/Slider';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { useMemo, useState, type Dispatch } from 'react';
import {
  predictedPerplexity as perplexityFromNll,
  reallocateProfiles,
  type CacheShape,
  type LayerProfile,
  type ReallocateInput,
} from '../../main/core/allocate/index.ts';
import type { Allocation, CompressReport, RankOverride } from '../../main/contract/index.ts';
import { useApi } from '../app/api-context.tsx';
import { baseName } from '../app/paths.ts';
import { ErrorAlert } from '../app/ErrorAlert.tsx';
import { formatBytes, formatError, formatPercent } from '../../main/core/format.ts';
import { useTask } from '../app/use-task.ts';
import { AllocationChart } from '../charts/AllocationChart.tsx';
import type { LayerRanks } from '../charts/allocation-data.ts';
import { MemoryPanel } from '../charts/MemoryPanel.tsx';
import { weightsBytes } from '../charts/memory-data.ts';
import { ProfileChart } from '../charts/ProfileChart.tsx';
import { profileSeries } from '../charts/profile-data.ts';
import { methodInfo } from '../state/methods.ts';
import { qualityWarning } from '../state/quality.ts';
import { QualityWarning } from './QualityWarning.tsx';
import { profilesFromReport } from '../state/run.ts';
import type { WizardAction } from '../state/wizard.ts';
import { ComparePanel } from './ComparePanel.tsx';
import { exportRanks } from './ExportStep.tsx';
import { LayerEditor } from './LayerEditor.tsx';
import type { StepProps } from './step-props.ts';
import { TryPanel, usePromptSuggestions } from './TryPanel.tsx';

/** What the review shows: the job's own allocation, or the edited one once a layer was set by hand. */
export function shownAllocation(result: CompressReport, allocation: Allocation | null) {
  if (allocation) {
    return {
      layers: allocation.layers as LayerRanks[],
      perToken: allocation.kvBytesPerToken,
      weightedError: allocation.weightedError,
      feasible: allocation.feasible,
      reason: allocation.reason,
    };
  }
  return {
    layers: result.layers.map((l) => ({ layer: l.layer, kRank: l.kRank, vRank: l.vRank, error: l.error })),
    perToken: result.kvBytesPerToken,
    weightedError: result.allocation?.weightedError ?? null,
    feasible: result.allocation?.feasible ?? true,
    reason: result.allocation?.reason,
  };
}

export function upsertOverride(list: readonly RankOverride[], o: RankOverride): RankOverride[] {
  return [...list.filter((x) => x.layer !== o.layer), o].sort((a, b) => a.layer - b.layer);
}

/** A perplexity and its change from the original's, as the review prints both. */
function pplWithChange(perplexity: number, original: number): string {
  const change = (perplexity / original - 1) * 100;
  return `${perplexity.toFixed(3)} (${change >= 0 ? '+' : ''}${change.toFixed(2)} %)`;
}

/**
 * The perplexity predicted for an allocation shown in place of the job's (moved target, hand-set layers),
 * from the summed predicted NLL increase the end-to-end objective gives: original · exp(Σ ΔNLL). Null for
 * the job's own allocation and for allocations over layer errors, which predict no perplexity.
 */
export function predictedPerplexity(
  result: Pick<CompressReport, 'perplexity'>,
  allocation: Pick<Allocation, 'predictedNllIncrease'> | null,
): number | null {
  const nll = allocation?.predictedNllIncrease;
  return nll === undefined ? null : perplexityFromNll(result.perplexity.original, nll);
}

function Perplexity({
  result,
  allocation,
  warnAbove,
  dispatch,
}: {
  result: CompressReport;
  allocation: Allocation | null;
  warnAbove: string;
  dispatch: Dispatch<WizardAction>;
}) {
  const { original, compressed } = result.perplexity;
  const change = (compressed / original - 1) * 100;
  const warning = qualityWarning(result, warnAbove);
  const reallocated = predictedPerplexity(result, allocation);
  return (
    <Paper variant="outlined" sx={{ p: 2, flex: 1 }} data-testid="perplexity">
      <Typography variant="h6">Perplexity</Typography>
      <Typography variant="body2" color="text.secondary">
        How surprised the model is by the evaluation text (lower is better).
      </Typography>
      <Typography variant="h5" sx={{ mt: 1 }}>
        {original.toFixed(3)} → {compressed.toFixed(3)}
      </Typography>
      <Typography color={warning ? 'error.main' : 'text.secondary'} data-testid="perplexity-change">
        {change >= 0 ? '+' : ''}
        {change.toFixed(2)} %
      </Typography>
      {result.predicted && (
        <Typography variant="body2" color="text.secondary" data-testid="perplexity-predicted">
          Predicted perplexity {result.predicted.perplexity.toFixed(3)} (measured {compressed.toFixed(3)}):
          what the allocator expected from each layer’s effect, probed on calibration windows; the measured
          one is on the evaluation text.
        </Typography>
      )}
      {reallocated !== null && (
        <Typography variant="body2" sx={{ mt: 0.5 }} data-testid="perplexity-reallocated">
          The allocation shown above, predicted (not measured): perplexity{' '}
          {pplWithChange(reallocated, original)}
        </Typography>
      )}
      <Typography variant="caption" color="text.secondary" component="p">
        Measured for the job’s allocation. Hand-set ranks and a moved target are measured by the export’s
        verification.
      </Typography>
      <Box>
        <QualityWarning result={result} warnAbove={warnAbove} dispatch={dispatch} />
      </Box>
    </Paper>
  );
}

export type ReviewTarget = Pick<ReallocateInput, 'kvFraction' | 'budget' | 'maxPplIncrease'>;

/** The memory target, perplexity target or error budget the job ran with, from its settings as the wizard keyed them. */
export function jobTarget(settingsKey: string): ReviewTarget {
  try {
    const s = JSON.parse(settingsKey) as ReviewTarget;
    if (s.kvFraction !== undefined) return { kvFraction: s.kvFraction };
    return s.maxPplIncrease !== undefined ? { maxPplIncrease: s.maxPplIncrease } : { budget: s.budget };
  } catch {
    return {};
  }
}

/**
 * What the local re-allocation solves over for `target`, as the engine's reallocate decides it: a job
 * that measured its layers' effects (the end-to-end objective) re-allocates over them, except for an error
 * budget, which bounds layer errors by definition.
 */
export function reallocationInput(
  result: Pick<CompressReport, 'effects'>,
  target: ReviewTarget,
): Pick<ReallocateInput, 'effects'> {
  return result.effects && target.budget === undefined ? { effects: result.effects } : {};
}

/** The cache shape the engine allocates with, from the job's own byte counts (so both agree exactly). */
export function cacheShape(
  result: CompressReport,
  card: { layers: number; kvHeads: number; headDim: number },
): CacheShape {
  return {
    kvHeads: card.kvHeads,
    headDim: card.headDim,
    bytesPerElement: result.kvBytesPerToken.original / (2 * card.layers * card.kvHeads * card.headDim),
  };
}

/**
 * Why the allocation shown misses its target. Under a perplexity target the allocator's own words speak of
 * the per-layer effect budget it solved against; the predicted perplexity says the same in the target's terms.
 */
function missedReason(
  result: CompressReport,
  allocation: Allocation | null,
  target: ReviewTarget,
  reason: string | undefined,
): string {
  const predicted = predictedPerplexity(result, allocation);
  if (target.maxPplIncrease !== undefined && predicted !== null) {
    return (
      `The hand-set ranks put the predicted perplexity at ${pplWithChange(predicted, result.perplexity.original)}, ` +
      `above the target of +${+(target.maxPplIncrease * 100).toFixed(2)} %.`
    );
  }
  return reason ?? 'This allocation misses its target.';
}

export function ReviewStep({ state, dispatch }: StepProps) {
  const api = useApi();
  const task = useTask();
  const [selected, setSelected] = useState<number | null>(null);
  const [editing, setEditing] = useState<number | null>(null);
  const run = state.run;
  const card = state.model.card;
  const result = run?.result ?? null;
  const { allocation, overrides } = state.review;
  const profiles = useMemo(() => (result ? profilesFromReport(result) : []), [result]);
  const shown = useMemo(() => (result ? shownAllocation(result, allocation) : null), [result, allocation]);
  const edited = useMemo(() => new Set(overrides.map((o) => o.layer)), [overrides]);
  const series = useMemo(() => {
    if (!shown || !card) return [];
    return profileSeries(profiles, card.headDim, new Map(shown.layers.map((l) => [l.layer, l])));
  }, [profiles, shown, card]);
  const suggestions = usePromptSuggestions({ state, dispatch });

  if (!run || !card || !result || !shown) {
    return (
      <Box data-testid="step-review" sx={{ display: 'flex', gap: 2, alignItems: 'center' }}>
        <CircularProgress size={20} />
        <Typography>Fetching the result…</Typography>
      </Box>
    );
  }

  const editable = profiles.length > 0;
  const unitBytes = result.kvBytesPerToken.original / (2 * card.layers * card.headDim);
  const kvFraction = state.review.kvFraction;
  const reallocate = async (next: RankOverride[]) => {
    if (next.length === 0 && kvFraction === null) {
      dispatch({ type: 'allocation', allocation: null, overrides: [] });
      return true;
    }
    const a = await task.run(() =>
      api.reallocate({
        jobId: run.jobId,
        ...(kvFraction !== null ? { kvFraction } : {}),
        ...(next.length > 0 ? { overrides: next } : {}),
      }),
    );
    if (a) dispatch({ type: 'allocation', allocation: a, overrides: next });
    return a !== undefined;
  };
  // The slider and the re-fit run the engine's own allocator (main/core/allocate) on the profiles held
  // here: the same function the engine's reallocate calls, in milliseconds instead of a round trip.
  const layerProfiles: LayerProfile[] = profiles.map((p) => ({ layer: p.layer, points: p.points }));
  const locally = (target: ReviewTarget, next: RankOverride[], refit: boolean) =>
    // synchronous, but through the task so an allocator refusal is shown like the engine's would be
    task.run(async () =>
      reallocateProfiles(layerProfiles, cacheShape(result, card), {
        ...target,
        ...reallocationInput(result, target),
        overrides: next,
        refit,
      }),
    );
  const moveTarget = async (fraction: number) => {
    const a = await locally({ kvFraction: fraction }, overrides, overrides.length > 0);
    if (a) dispatch({ type: 'allocation', allocation: a, overrides, kvFraction: fraction });
  };
  const target: ReviewTarget = kvFraction !== null ? { kvFraction } : jobTarget(run.settingsKey);
  // re-fit meets a memory target, or a perplexity target the job's measured effects can predict
  const canRefit =
    overrides.length > 0 &&
    (target.kvFraction !== undefined ||
      (target.maxPplIncrease !== undefined && result.effects !== undefined));
  const refit = async () => {
    const a = await locally(target, overrides, true);
    if (a) dispatch({ type: 'allocation', allocation: a, overrides });
  };
  const resetAll = () => dispatch({ type: 'allocation', allocation: null, overrides: [], kvFraction: null });
  const select = (layer: number) => {
    setSelected(layer);
    if (editable) {
      task.clear();
      setEditing(layer);
    }
  };
  const editingLayer = editing === null ? null : (shown.layers.find((l) => l.layer === editing) ?? null);
  // what the chart shows, hand-set layers and all (the same ranks an export would write)
  const ranks = exportRanks(state);

  return (
    <Box data-testid="step-review">
      <Typography>
        {methodInfo(result.method).name} keeps{' '}
        <strong>{formatPercent(shown.perToken.compressed / shown.perToken.original, 1)}</strong> of the KV
        cache ({formatBytes(shown.perToken.original)} → {formatBytes(shown.perToken.compressed)} per token)
        {shown.weightedError !== null && (
          <> with a mean layer output error of {formatError(shown.weightedError)}</>
        )}
        .
      </Typography>
      {!shown.feasible && (
        <Alert
          severity="warning"
          sx={{ mt: 1 }}
          data-testid="infeasible"
          action={
            canRefit ? (
              <Button color="inherit" size="small" onClick={() => void refit()} data-testid="refit">
                Re-fit the other layers
              </Button>
            ) : undefined
          }
        >
          {missedReason(result, allocation, target, shown.reason)}
          {canRefit && ' Re-fit keeps the layers you set and re-allocates the rest to meet the target.'}
        </Alert>
      )}
      {editable && (
        <Box sx={{ mt: 2, maxWidth: 560 }} data-testid="target-slider">
          <Typography id="target-slider-label" variant="body2">
            Memory target: keep{' '}
            <strong>
              {formatPercent(kvFraction ?? shown.perToken.compressed / shown.perToken.original, 1)}
            </strong>{' '}
            of the cache{kvFraction === null ? ' (the job’s allocation)' : ''}
            {overrides.length > 0 ? ', the layers set by hand held' : ''}
          </Typography>
          <Slider
            aria-labelledby="target-slider-label"
            min={0.05}
            max={1}
            step={0.01}
            value={
              kvFraction ?? Math.min(1, Math.max(0.05, shown.perToken.compressed / shown.perToken.original))
            }
            valueLabelDisplay="auto"
            valueLabelFormat={(v) => formatPercent(v)}
            getAriaValueText={(v) => `${formatPercent(v)} of the cache`}
            onChange={(_, v) => void moveTarget(v as number)}
          />
        </Box>
      )}
      {overrides.length > 0 && (
        <Alert
          severity="info"
          sx={{ mt: 1 }}
          action={
            <Button color="inherit" size="small" onClick={resetAll} data-testid="reset-all">
              Reset all
            </Button>
          }
        >
          {overrides.length} layer{overrides.length === 1 ? '' : 's'} set by hand:{' '}
          {overrides.map((o) => `layer ${o.layer} (K ${o.kRank}, V ${o.vRank})`).join(', ')}.
        </Alert>
      )}
      {task.error && editing === null && <ErrorAlert error={task.error} context="review" />}

      <Typography variant="h6" sx={{ mt: 2 }}>
        Ranks per layer
      </Typography>
      <Typography variant="body2" color="text.secondary">
        How much of each layer’s keys (K) and values (V) is kept.{' '}
        {editable && 'Click a layer, or focus it and press Enter, to set its ranks by hand.'}
      </Typography>
      <AllocationChart
        layers={shown.layers}
        headDim={card.headDim}
        bytesPerRank={unitBytes}
        edited={edited}
        selected={selected}
        onSelect={select}
      />

      {editable && (
        <>
          <Typography variant="h6" sx={{ mt: 2 }}>
            Error against size, per layer
          </Typography>
          <Typography variant="body2" color="text.secondary">
            Each curve is a layer; the dots are the sizes chosen. A dot far left on a flat curve is a layer
            that compresses for free.
          </Typography>
          <ProfileChart
            series={series}
            headDim={card.headDim}
            bytesPerRank={unitBytes}
            layers={card.layers}
            selected={selected}
            onSelect={select}
          />
        </>
      )}

      <Stack direction={{ xs: 'column', md: 'row' }} spacing={2} sx={{ mt: 2 }}>
        <Box sx={{ flex: 2 }}>
          <MemoryPanel
            perToken={shown.perToken}
            weightsBytes={weightsBytes(card)}
            maxPositions={card.maxPositions}
          />
        </Box>
        <Perplexity result={result} allocation={allocation} warnAbove={state.warnAbove} dispatch={dispatch} />
      </Stack>

      <Box sx={{ mt: 2 }}>
        <ComparePanel state={state} dispatch={dispatch} />
      </Box>

      <Box sx={{ mt: 2 }}>
        <TryPanel
          model={{ jobId: run.jobId, ...(ranks ? { ranks } : {}) }}
          compare={{ dir: card.dir }}
          suggestions={suggestions}
          modelCaption={`${methodInfo(result.method).name}, ${ranks ? 'as edited above' : 'as allocated'}`}
          compareCaption={baseName(card.dir)}
          description="Generates from one prompt with the compressed model as shown above (built in memory, nothing exported yet) and with the original, side by side. Where the compressed text first departs from the original's is highlighted."
        />
      </Box>

      <LayerEditor
        layer={editingLayer}
        points={editing === null ? [] : (profiles[editing]?.points ?? [])}
        headDim={card.headDim}
        unitBytes={unitBytes}
        perToken={shown.perToken}
        edited={editing !== null && edited.has(editing)}
        busy={task.busy}
        error={task.error}
        onClose={() => setEditing(null)}
        onApply={(kRank, vRank) =>
          void reallocate(upsertOverride(overrides, { layer: editing!, kRank, vRank })).then(
            (ok) => ok && setEditing(null),
          )
        }
        onReset={() =>
          void reallocate(overrides.filter((o) => o.layer !== editing)).then((ok) => ok && setEditing(null))
        }
      />
    </Box>
  );
}
