/**
 * The compression job, stage by stage (ARCHITECTURE.md §3): calibration windows → per-layer Gram
 * matrices → per-layer fits and error-rank profiles on held-out windows → rank allocation → perplexity of
 * the original and the compressed model. The compressed model lives in memory here; writing it to disk is
 * the export stage's work. The stages live under stages/; what differs between methods is asked of the
 * method's hooks (methods/types.ts), never of its id.
 */
import type { Allocation, LayerProfile } from '../core/allocate/index.ts';
import type { CompressReport, FinetuneReport } from '../contract/report.ts';
import type { CompressionPlan } from '../export/plan.ts';
import type { LayerCompression, Objective } from '../core/kv.ts';
import { predictedPerplexity } from '../core/allocate/effect.ts';
import { methodById } from '../methods/index.ts';
import type { RankPoint } from '../methods/types.ts';
import type { ModelHandle } from '../model/model.ts';
import { captureGrams } from '../runtime/capture.ts';
import type { Engine } from '../runtime/engine.ts';
import { defaultProfileRows } from '../runtime/sampled-rows.ts';
import { ModelRunner } from '../runtime/runner.ts';
import type { CompressOptions, CompressSettings } from './settings.ts';
import { allocateRanks } from './stages/allocate.ts';
import { allocateEndToEnd, effectWindows, type EndToEnd } from './stages/effects.ts';
import { finetuneLayers, finetuneWindows } from './stages/finetune.ts';
import { objectiveOf } from './stages/objective.ts';
import { checkSettings, keySpacesFor } from './stages/checks.ts';
import { evaluate, kvBytesPerToken } from './stages/evaluate.ts';
import type { LayerJob } from './stages/layer-job.ts';
import { fitLayers, type LayerResults } from './stages/layers.ts';
import { loadJobWindows, openJob, type JobWindows } from './stages/load.ts';
import { StageTimer } from './stages/timer.ts';

export type { CompressOptions, CompressSettings } from './settings.ts';

export type { CompressionPlan } from '../export/plan.ts';

export async function compress(s: CompressSettings, opts: CompressOptions = {}): Promise<CompressReport> {
  return (await compressToPlan(s, opts)).report;
}

/** The compression job, keeping the compressions so they can be exported. */
export async function compressToPlan(
  s: CompressSettings,
  opts: CompressOptions = {},
): Promise<{ report: CompressReport; plan: CompressionPlan }> {
  const timer = new StageTimer();
  const { model, engine } = await openJob(s);
  try {
    const spec = model.spec;
    checkSettings(s, spec);
    const method = methodById(s.method);
    const spaces = keySpacesFor(s.keySpace ?? 'auto', method.keySpaces(spec), s.method, spec);
    const windows = await loadJobWindows(s, model);
    timer.lap('load');

    const runner = new ModelRunner(engine, model);
    const grams = await captureGrams(runner, windows.fit, opts);
    timer.lap('capture');

    const cost = method.cost(s);
    const job: LayerJob = {
      s,
      opts,
      spec,
      runner,
      method,
      spaces,
      plan: method.rankPlan(spec, s),
      cost,
      grams,
    };
    // A method that trains does so on a kept sample of the fitting windows.
    const train = windows.fit.slice(0, cost.training?.windows ?? 0);
    const layers = await fitLayers(job, { held: windows.held, train });
    timer.lap('profile');
    // Training happened inside the layer loop; report it as its own stage.
    if (layers.training) timer.split('profile', 'train', layers.training.seconds);

    const objective = objectiveOf(s, spec, job.plan);
    const e2e =
      objective === 'e2e'
        ? await allocateEndToEnd(job, layers, effectWindows(windows.held, windows.fit), {
            calib: [...windows.held, ...windows.fit],
            eval: windows.eval,
          })
        : null;
    const { chosen, allocation } = allocateRanks(s, spec, job.plan, layers, e2e?.allocation ?? null);
    timer.lap(e2e ? 'effects' : 'allocate');

    const fitted = chosen.map((c, i) => layers.fits[i].at(c.kRank, c.vRank));
    const tuned = s.finetune
      ? await finetuneLayers(job, fitted, finetuneWindows(windows), s.finetune)
      : { compressions: fitted, report: null };
    if (tuned.report) timer.lap('finetune');
    const compressions = tuned.compressions;
    // the end-to-end objective measured the original on the evaluation windows already
    const known = e2e ? { originalNll: e2e.originalEvalNll } : {};
    const perplexity = await evaluate({ engine, model, runner, opts }, windows.eval, compressions, known);
    timer.lap('eval');

    const finished = {
      ...{ s, model, engine, windows, layers, chosen, allocation, compressions, perplexity },
      objective,
      e2e,
      finetune: tuned.report,
    };
    const report = buildReport(finished, timer.seconds);
    return { report, plan: buildPlan(s, model, windows, compressions, report) };
  } finally {
    await engine.release();
    await model.close();
  }
}

interface Finished {
  s: CompressSettings;
  model: ModelHandle;
  engine: Engine;
  windows: JobWindows;
  layers: LayerResults;
  chosen: RankPoint[];
  allocation: Allocation | null;
  compressions: LayerCompression[];
  perplexity: CompressReport['perplexity'];
  objective: Objective | null;
  e2e: EndToEnd | null;
  finetune: FinetuneReport | null;
}

function buildReport(f: Finished, seconds: Record<string, number>): CompressReport {
  const { s, model, windows, layers, chosen, allocation, compressions } = f;
  const spec = model.spec;
  const bytes = kvBytesPerToken(spec, compressions);
  const report: CompressReport = {
    model: model.dir,
    method: s.method,
    keySpace: s.keySpace ?? 'auto',
    window: windows.window,
    calibWindows: windows.fit.length,
    heldoutWindows: windows.held.length,
    profileTokens: Math.min(windows.window, s.profileTokens ?? defaultProfileRows(spec)),
    evalWindows: windows.eval.length,
    device: f.engine.provider,
    perplexity: f.perplexity,
    kvBytesPerToken: bytes,
    kvFraction: bytes.compressed / bytes.original,
    layers: chosen.map((c, i) => ({
      layer: i,
      kRank: c.kRank,
      vRank: compressions[i].values ? c.vRank : spec.headDim,
      keySpace: layers.fits[i].keySpace,
      error: c.error,
    })),
    seconds,
  };
  if (f.finetune) report.finetune = f.finetune;
  const training = layers.training;
  if (training) {
    report.training = {
      steps: training.steps,
      seconds: training.seconds,
      secondsPerLayerStep: training.steps > 0 ? training.seconds / training.steps : 0,
    };
  }
  if (!s.ranks) report.profile = profilePoints(layers.profiles);
  if (allocation) {
    report.allocation = {
      kind: s.maxPplIncrease !== undefined ? 'perplexity' : allocation.target.kind,
      target: s.kvFraction ?? s.maxPplIncrease ?? s.budget!,
      feasible: allocation.feasible,
      weightedError: allocation.weightedError,
      ...(allocation.reason ? { reason: allocation.reason } : {}),
    };
  }
  if (f.objective) report.objective = f.objective;
  if (f.e2e && allocation?.predictedNllIncrease !== undefined) {
    report.effects = f.e2e.effects;
    report.predicted = {
      nllIncrease: allocation.predictedNllIncrease,
      perplexity: predictedPerplexity(f.perplexity.original, allocation.predictedNllIncrease),
    };
  }
  return report;
}

const profilePoints = (profiles: LayerProfile[]) =>
  profiles.map((p) => p.points.map((q) => ({ kRank: q.kRank, vRank: q.vRank, error: q.error })));

function buildPlan(
  s: CompressSettings,
  model: ModelHandle,
  windows: JobWindows,
  compressions: LayerCompression[],
  report: CompressReport,
): CompressionPlan {
  const { calib, window, sampling } = windows;
  return {
    modelDir: model.dir,
    method: s.method,
    layers: compressions,
    calibration: { source: calib.source, windows: calib.windows.length, window, seed: s.seed ?? 0, sampling },
    evalSource: windows.evalSource,
    report,
  };
}
