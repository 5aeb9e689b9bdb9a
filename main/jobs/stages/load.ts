/** The load stage: the model and its engine, then the calibration and evaluation windows. */
import { badInput, badSetting } from '../../core/errors.ts';
import { loadWindows, type LoadedWindows, type Sampling } from '../../data/windows.ts';
import { openModel, type ModelHandle } from '../../model/model.ts';
import { loadTokenizer } from '../../model/tokenizer.ts';
import { Engine } from '../../runtime/engine.ts';
import type { CompressSettings } from '../settings.ts';

const DEFAULT_CALIB_WINDOWS = 32;

export async function openJob(s: CompressSettings): Promise<{ model: ModelHandle; engine: Engine }> {
  const model = await openModel(s.modelDir);
  try {
    return { model, engine: await Engine.create({ device: s.device ?? 'cpu', threads: s.threads }) };
  } catch (e) {
    // an unavailable device must not leave the checkpoint's file open for the garbage collector
    await model.close();
    throw e;
  }
}

/** Errors are measured on windows the bases were not fitted on; a quarter, at most 8, is enough. */
export function defaultHeldoutWindows(calibWindows: number): number {
  return Math.min(8, Math.max(1, Math.round(calibWindows / 4)));
}

export interface JobWindows {
  window: number;
  sampling: Sampling;
  /** Every calibration window: those fitted on, then those held out. */
  calib: LoadedWindows;
  fit: Int32Array[];
  held: Int32Array[];
  eval: Int32Array[];
  evalSource: string;
}

export async function loadJobWindows(s: CompressSettings, model: ModelHandle): Promise<JobWindows> {
  const window = s.window ?? 512;
  if (window > model.spec.maxPositions) {
    throw badSetting(
      'window',
      `window ${window} is longer than the model's context of ${model.spec.maxPositions} tokens`,
    );
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
  const heldCount = s.heldoutWindows ?? defaultHeldoutWindows(calib.windows.length);
  if (!Number.isInteger(heldCount) || heldCount < 1 || heldCount >= calib.windows.length) {
    throw badSetting(
      'heldoutWindows',
      `heldoutWindows must leave at least one of the ${calib.windows.length} calibration windows to fit on, got ${heldCount}`,
    );
  }
  const fit = calib.windows.slice(0, calib.windows.length - heldCount);
  const held = calib.windows.slice(calib.windows.length - heldCount);
  return { window, sampling, calib, fit, held, eval: evalWindows, evalSource: all.source };
}
