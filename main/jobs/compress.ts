/**
 * The compression job, stage by stage (ARCHITECTURE.md §3): calibration windows → per-layer Gram
 * matrices → per-layer fits and error-rank profiles on held-out windows → rank allocation → perplexity of
 * the original and the compressed model. The compressed model lives in memory here; writing it to disk is
 * the export stage's work.
 */
import { badInput, isUserError } from '../core/errors.ts';
import {
  allocateByBudget,
  allocateByMemory,
  type Allocation,
  type LayerProfile,
  type ProfilePoint,
} from '../allocate/index.ts';
import type { StoredLayer } from './layer-store.ts';
import { loadWindows, type Sampling } from '../data/windows.ts';
import { dtypeBytes } from '../model/dtype.ts';
import { openModel } from '../model/model.ts';
import { loadTokenizer } from '../model/tokenizer.ts';
import type { ModelSpec } from '../model/types.ts';
import { eigenThresholdSweep, fitEigen } from '../methods/eigen.ts';
import { methodById } from '../methods/index.ts';
import type { LayerFit } from '../methods/types.ts';
import type { KeySpace, LayerCompression, MethodId } from '../core/kv.ts';
import { captureGrams, layerSamples } from '../runtime/capture.ts';
import { trainStief, type StiefSettings } from '../methods/stief.ts';
import { Engine, type Device } from '../runtime/engine.ts';
import { progressTracker, type Progress } from '../core/progress.ts';
import { LayerErrorMeter } from '../runtime/layer-error.ts';
import { perplexity } from '../runtime/perplexity.ts';
import { ModelRunner, withCompression } from '../runtime/runner.ts';

export type KeySpaceSetting = KeySpace | 'auto';

export interface CompressSettings {
  modelDir: string;
  calib: string;
  eval: string;
  method: MethodId;
  /** Fixed per-head ranks: skips allocation. */
  ranks?: { k: number; v: number };
  /** Error budget: bound on the weighted mean relative layer-output error. */
  budget?: number;
  /** Memory target: fraction of the original KV cache bytes. */
  kvFraction?: number;
  keySpace?: KeySpaceSetting;
  window?: number;
  calibWindows?: number;
  /** Calibration windows held out to measure layer errors (default a quarter, 1…8). */
  heldoutWindows?: number;
  evalWindows?: number;
  calibSampling?: Sampling;
  seed?: number;
  device?: Device;
  /** onnxruntime intra-op threads (default: all cores); a job beside a UI leaves one core to it. */
  threads?: number;
  /** Layer weights w_ℓ of the allocator (default 1). */
  layerWeights?: number[];
  /** EigenAttention's own threshold sweep, or the knapsack (default: sweep for eigen with a budget). */
  allocator?: 'knapsack' | 'sweep';
  /** StiefAttention training: steps, learning rate, and how many calibration windows it trains on. */
  stief?: Partial<StiefSettings> & { trainWindows?: number };
}

export interface CompressOptions {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /** The job cache: finished layers are loaded from it instead of being fitted again, and saved to it. */
  layerStore?: {
    load(layer: number): Promise<StoredLayer | null>;
    save(layer: StoredLayer, ranks: number[], d: number): Promise<void>;
  };
  /** Each layer's profile as soon as it is measured (or loaded): the live curves of the UI. */
  onLayer?: (e: { layer: number; keySpace: KeySpace; points: ProfilePoint[]; cached: boolean }) => void;
}

export interface CompressedLayerReport {
  layer: number;
  k_rank: number;
  v_rank: number;
  key_space: KeySpace;
  /** Relative decoder-layer output error at the chosen ranks, on the held-out calibration windows. */
  error: number;
}

export interface CompressReport {
  model: string;
  method: MethodId;
  key_space: KeySpaceSetting;
  window: number;
  calib_windows: number;
  heldout_windows: number;
  eval_windows: number;
  device: string;
  perplexity: { original: number; compressed: number };
  kv_bytes_per_token: { original: number; compressed: number };
  kv_fraction: number;
  layers: CompressedLayerReport[];
  profile?: { k_rank: number; v_rank: number; error: number }[][];
  allocation?: { kind: string; target: number; feasible: boolean; reason?: string; weighted_error: number };
  /** StiefAttention: optimiser steps over all layers and both phases, and their wall time. */
  training?: { steps: number; seconds: number; seconds_per_layer_step: number };
  seconds: Record<string, number>;
}

const DEFAULT_CALIB_WINDOWS = 32;

/**
 * What an export needs from a finished compression: the per-layer compressions (bases in memory), the
 * source model, and how the calibration was drawn (recorded in the exported config).
 */
export interface CompressionPlan {
  modelDir: string;
  method: MethodId;
  /** Per layer; null leaves the layer as it was. */
  layers: (LayerCompression | null)[];
  calibration: { source: string; windows: number; window: number; seed: number; sampling: Sampling };
  /** The evaluation text, whose first windows the export's verification runs. */
  evalSource: string;
  report: CompressReport;
}

/** Per-head rank grid: multiples of max(1, ⌊d/8⌋) up to d, d included (ARCHITECTURE.md §6). */
export function rankGrid(d: number): number[] {
  const step = Math.max(1, Math.floor(d / 8));
  const grid: number[] = [];
  for (let r = step; r < d; r += step) grid.push(r);
  grid.push(d);
  return grid;
}

function checkSettings(s: CompressSettings, spec: ModelSpec): void {
  const modes = [s.ranks !== undefined, s.budget !== undefined, s.kvFraction !== undefined].filter(Boolean);
  if (modes.length !== 1) {
    throw badInput('give exactly one of --k-rank/--v-rank, --budget or --kv-fraction');
  }
  if (s.ranks) {
    for (const [name, r] of [
      ['--k-rank', s.ranks.k],
      ['--v-rank', s.ranks.v],
    ] as const) {
      if (!Number.isInteger(r) || r < 1 || r > spec.headDim) {
        throw badInput(
          `${name} must be an integer from 1 to the head dimension ${spec.headDim} (ranks are per KV head), got ${r}`,
        );
      }
    }
  }
  if (s.budget !== undefined && !(s.budget > 0 && Number.isFinite(s.budget))) {
    throw badInput(
      `--budget must be a positive number (a mean relative layer-output error such as 0.05), got ${s.budget}`,
    );
  }
  if (s.kvFraction !== undefined && !(s.kvFraction > 0 && s.kvFraction <= 1)) {
    throw badInput(
      `--kv-fraction must be in (0, 1], the share of the original KV cache to keep, got ${s.kvFraction}`,
    );
  }
}

function keySpacesFor(setting: KeySpaceSetting, available: KeySpace[], method: MethodId): KeySpace[] {
  if (setting === 'auto') return available;
  if (!available.includes(setting)) {
    throw badInput(
      `--key-space ${setting} is not available for ${method} on this model; use one of ${available.join(', ')} or auto`,
    );
  }
  return [setting];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function compress(s: CompressSettings, opts: CompressOptions = {}): Promise<CompressReport> {
  return (await compressToPlan(s, opts)).report;
}

/** The compression job, keeping the compressions so they can be exported. */
export async function compressToPlan(
  s: CompressSettings,
  opts: CompressOptions = {},
): Promise<{ report: CompressReport; plan: CompressionPlan }> {
  const seconds: Record<string, number> = {};
  let t0 = performance.now();
  const lap = (stage: string) => {
    const now = performance.now();
    seconds[stage] = (seconds[stage] ?? 0) + (now - t0) / 1000;
    t0 = now;
  };

  const model = await openModel(s.modelDir);
  let engine: Engine;
  try {
    engine = await Engine.create({ device: s.device ?? 'cpu', threads: s.threads });
  } catch (e) {
    // an unavailable device must not leave the checkpoint's file open for the garbage collector
    await model.close();
    throw e;
  }
  try {
    const spec = model.spec;
    const d = spec.headDim;
    checkSettings(s, spec);
    const method = methodById(s.method);
    const keySetting = s.keySpace ?? 'auto';
    const spaces = keySpacesFor(keySetting, method.keySpaces(spec), s.method);
    const window = s.window ?? 512;
    if (window > spec.maxPositions) {
      throw badInput(`--window ${window} is longer than the model's context of ${spec.maxPositions} tokens`);
    }

    const tokenizer = await loadTokenizer(model.dir);
    const sampling = s.calibSampling ?? 'first';
    // The default of 32 windows is a ceiling for a short text; an explicit --calib-windows is a request.
    const calib = await loadWindows(s.calib, tokenizer, {
      window,
      count: s.calibWindows ?? (sampling === 'random' ? DEFAULT_CALIB_WINDOWS : undefined),
      sampling,
      seed: s.seed ?? 0,
    });
    if (s.calibWindows === undefined) calib.windows = calib.windows.slice(0, DEFAULT_CALIB_WINDOWS);
    if (calib.windows.length < 2) {
      throw badInput(
        'calibration needs at least 2 windows: one to fit on and one held out to measure errors',
        s.calib,
      );
    }
    const all = await loadWindows(s.eval, tokenizer, { window });
    const evalWindows = s.evalWindows === undefined ? all.windows : all.windows.slice(0, s.evalWindows);
    // Errors are measured on windows the bases were not fitted on; a quarter, at most 8, is enough.
    const heldCount = s.heldoutWindows ?? Math.min(8, Math.max(1, Math.round(calib.windows.length / 4)));
    if (!Number.isInteger(heldCount) || heldCount < 1 || heldCount >= calib.windows.length) {
      throw badInput(
        `--heldout-windows must leave at least one of the ${calib.windows.length} calibration windows to fit on, got ${heldCount}`,
      );
    }
    const fitWindows = calib.windows.slice(0, calib.windows.length - heldCount);
    const heldWindows = calib.windows.slice(calib.windows.length - heldCount);
    lap('load');

    const runner = new ModelRunner(engine, model);
    const grams = await captureGrams(runner, fitWindows, opts);
    lap('capture');

    const allocating = !s.ranks;
    const useSweep = s.method === 'eigen' && s.budget !== undefined && (s.allocator ?? 'sweep') === 'sweep';
    const grid = rankGrid(d);
    const learning = s.method === 'stief';
    // StiefAttention trains on a kept sample of the fitting windows; with fixed ranks it needs only those.
    const trainWindows = learning ? fitWindows.slice(0, Math.max(1, s.stief?.trainWindows ?? 4)) : [];
    const stiefGrid = allocating ? grid : [...new Set([s.ranks!.k, s.ranks!.v, d])].sort((a, b) => a - b);
    let trainSeconds = 0;
    let trainSteps = 0;
    const trainEta = { start: performance.now(), done: 0 };
    const fits: LayerFit[] = [];
    const profiles: LayerProfile[] = [];
    const chosen: { kRank: number; vRank: number; error: number }[] = [];
    const tick = progressTracker('profile', spec.numLayers, opts.onProgress);
    const storedRanks = allocating ? grid : [...new Set([s.ranks!.k, s.ranks!.v])].sort((a, b) => a - b);
    const choosesInLoop = useSweep || !allocating;
    for await (const sample of layerSamples(runner, [heldWindows, trainWindows], { signal: opts.signal })) {
      const stored = await opts.layerStore?.load(sample.layer);
      if (stored) {
        fits.push(stored.fit);
        profiles.push({ layer: sample.layer, points: stored.points });
        if (choosesInLoop) chosen.push(stored.chosen!);
        opts.onLayer?.({
          layer: sample.layer,
          keySpace: stored.keySpace,
          points: stored.points,
          cached: true,
        });
        tick(sample.layer);
        continue;
      }
      const held = { layer: sample.layer, weights: sample.weights, batches: sample.sets[0] };
      const capture = { layer: held.layer, weights: held.weights, grams: grams[held.layer] };
      const meter = new LayerErrorMeter(runner, held.weights, held.batches);
      let best: { fit: LayerFit; profile: LayerProfile; score: number } | null = null;
      for (const space of spaces) {
        let fit: LayerFit;
        let known: ((k: number, v: number) => number | undefined) | null = null;
        if (learning) {
          const trained = await trainStief({
            capture,
            spec,
            keySpace: space,
            runner,
            train: sample.sets[1],
            meter,
            grid: stiefGrid,
            settings: s.stief,
            signal: opts.signal,
            onStep: (p) => {
              // ETA over the whole training: every layer trains keys then values for at most `steps` steps
              // each (early stopping only shortens it), at the pace measured so far.
              trainEta.done += 1;
              const planned = spec.numLayers * spaces.length * 2 * p.steps;
              const elapsed = (performance.now() - trainEta.start) / 1000;
              opts.onProgress?.({
                stage: `train ${p.phase}`,
                layer: p.layer,
                step: p.step,
                done: p.step,
                total: p.steps,
                etaSeconds: (elapsed / trainEta.done) * Math.max(0, planned - trainEta.done),
              });
            },
          });
          trainSeconds += trained.training.seconds;
          trainSteps += trained.training.keySteps + trained.training.valueSteps;
          fit = trained;
          known = trained.knownError;
        } else {
          try {
            fit = method.fit(capture, spec, space);
          } catch (e) {
            // a fit fails on what the calibration text gave it: name that text
            if (isUserError(e) && !e.file) throw badInput(e.message, s.calib);
            throw e;
          }
        }
        const measure = async (kRank: number, vRank: number) =>
          known?.(kRank, vRank) ?? (await meter.error(fit.at(kRank, vRank)));
        const points = [];
        if (allocating) {
          for (const kRank of grid) {
            for (const vRank of grid) points.push({ kRank, vRank, error: await measure(kRank, vRank) });
          }
        } else {
          const { k, v } = s.ranks!;
          points.push({ kRank: k, vRank: v, error: await measure(k, v) });
        }
        // auto: the key space whose profile is lower on average over the grid (or at the fixed point).
        const score = mean(points.map((p) => p.error));
        if (!best || score < best.score) best = { fit, profile: { layer: held.layer, points }, score };
      }
      fits.push(best!.fit);
      profiles.push(best!.profile);
      if (useSweep) {
        const eigenFit = fitEigen(capture, spec, best!.fit.keySpace);
        const r = await eigenThresholdSweep(eigenFit, d, s.budget!, (k, v) => meter.error(eigenFit.at(k, v)));
        chosen.push({ kRank: r.kRank, vRank: r.vRank, error: r.error });
      } else if (!allocating) {
        chosen.push(best!.profile.points[0]);
      }
      const layerResult: StoredLayer = {
        layer: held.layer,
        keySpace: best!.fit.keySpace,
        points: best!.profile.points,
        chosen: choosesInLoop ? chosen[chosen.length - 1] : null,
        fit: best!.fit,
      };
      await opts.layerStore?.save(layerResult, storedRanks, d);
      opts.onLayer?.({
        layer: held.layer,
        keySpace: layerResult.keySpace,
        points: layerResult.points,
        cached: false,
      });
      tick(held.layer);
    }
    lap('profile');
    if (learning) {
      // Training happened inside the layer loop; report it as its own stage.
      seconds.profile -= trainSeconds;
      seconds.train = trainSeconds;
    }

    const shape = { kvHeads: spec.numKvHeads, headDim: d, bytesPerElement: dtypeBytes(spec.dtype) };
    let allocation: Allocation | null = null;
    if (allocating && !useSweep) {
      const allocOpts = { weights: s.layerWeights };
      allocation =
        s.kvFraction !== undefined
          ? allocateByMemory(profiles, shape, s.kvFraction, allocOpts)
          : allocateByBudget(profiles, shape, s.budget!, allocOpts);
      for (const l of allocation.layers) chosen.push({ kRank: l.kRank, vRank: l.vRank, error: l.error });
    }
    lap('allocate');

    const compressions: LayerCompression[] = chosen.map((c, i) => fits[i].at(c.kRank, c.vRank));
    const original = await perplexity(runner, evalWindows, { ...opts, stage: 'eval original' });
    const compressedRunner = new ModelRunner(engine, withCompression(model, compressions));
    const compressed = await perplexity(compressedRunner, evalWindows, { ...opts, stage: 'eval compressed' });
    lap('eval');

    const bytes = dtypeBytes(spec.dtype);
    const originalBytes = 2 * spec.numLayers * spec.numKvHeads * d * bytes;
    // Values left at full dimension (thin keys) cost d per head whatever vRank says.
    const compressedBytes = compressions.reduce(
      (acc, c) => acc + (c.kRank + (c.values ? c.vRank : d)) * spec.numKvHeads * bytes,
      0,
    );
    const report: CompressReport = {
      model: model.dir,
      method: s.method,
      key_space: keySetting,
      window,
      calib_windows: fitWindows.length,
      heldout_windows: heldWindows.length,
      eval_windows: evalWindows.length,
      device: engine.provider,
      perplexity: { original: original.perplexity, compressed: compressed.perplexity },
      kv_bytes_per_token: { original: originalBytes, compressed: compressedBytes },
      kv_fraction: compressedBytes / originalBytes,
      layers: chosen.map((c, i) => ({
        layer: i,
        k_rank: c.kRank,
        v_rank: compressions[i].values ? c.vRank : d,
        key_space: fits[i].keySpace,
        error: c.error,
      })),
      seconds,
    };
    if (learning) {
      report.training = {
        steps: trainSteps,
        seconds: trainSeconds,
        seconds_per_layer_step: trainSteps > 0 ? trainSeconds / trainSteps : 0,
      };
    }
    if (allocating) {
      report.profile = profiles.map((p) =>
        p.points.map((q) => ({ k_rank: q.kRank, v_rank: q.vRank, error: q.error })),
      );
    }
    if (allocation) {
      report.allocation = {
        kind: allocation.target.kind,
        target: s.kvFraction ?? s.budget!,
        feasible: allocation.feasible,
        weighted_error: allocation.weightedError,
        ...(allocation.reason ? { reason: allocation.reason } : {}),
      };
    }
    const plan: CompressionPlan = {
      modelDir: model.dir,
      method: s.method,
      layers: compressions,
      calibration: {
        source: calib.source,
        windows: calib.windows.length,
        window,
        seed: s.seed ?? 0,
        sampling,
      },
      evalSource: all.source,
      report,
    };
    return { report, plan };
  } finally {
    await engine.release();
    await model.close();
  }
}
