/**
 * StiefAttention's training cost and result on stories260K, before and after issue 12's rework: the same
 * layers trained with the old behaviour (shared keys from EigenAttention's bases, keys then values, every
 * position of every training window each step, a held-out check every 10 steps; STIEF_PAPER_ORDER) and
 * with the defaults. Set up as `compress` sets up stories260K in bench/compress.ts: windows of 512, 32
 * calibration windows of which 8 are held out, 4 training windows. A layer-step is what the compress
 * report divides by: training seconds (held-out checks and the final selection included) over gradient
 * steps. The layers run before/after in turn, so a busy machine slows both alike.
 *
 * `npm run bench:stief` (about 3 minutes on 2 cores); `LAYERS=0,1,2,3,4` for every layer (about 8).
 */
import { rankGrid } from '../main/core/memory.ts';
import { loadWindows } from '../main/data/windows.ts';
import { trainStief, type StiefContext } from '../main/methods/stief.ts';
import { STIEF_PAPER_ORDER, type StiefSettings } from '../main/methods/stief-settings.ts';
import { openModel } from '../main/model/model.ts';
import { loadTokenizer } from '../main/model/tokenizer.ts';
import { captureGrams, layerSamples } from '../main/runtime/capture.ts';
import { Engine } from '../main/runtime/engine.ts';
import { LayerErrorSweep } from '../main/runtime/layer-sweep.ts';
import { ModelRunner } from '../main/runtime/runner.ts';
import { STORIES, STORIES_TEXT } from './docs-protocol.ts';

const WINDOW = 512;
const CALIB_WINDOWS = 32;
const HELD_OUT = 8;
const TRAIN_WINDOWS = 4;
const layers = (process.env.LAYERS ?? '0,3').split(',').map(Number);

interface Run {
  steps: number;
  seconds: number;
  /** Mean held-out error over the 8 × 8 grid. */
  mean: number;
}

async function run(ctx: StiefContext, settings: Partial<StiefSettings>): Promise<Run> {
  const fit = await trainStief({ ...ctx, settings });
  const errors = ctx.grid.flatMap((k) => ctx.grid.map((v) => fit.knownError(k, v)!));
  return { ...fit.training, mean: errors.reduce((a, b) => a + b, 0) / errors.length };
}

const sum = (runs: Run[], f: (r: Run) => number) => runs.reduce((a, r) => a + f(r), 0);
const msPerStep = (runs: Run[]) => (1000 * sum(runs, (r) => r.seconds)) / sum(runs, (r) => r.steps);
const meanOf = (runs: Run[]) => sum(runs, (r) => r.mean) / runs.length;
const describe = (runs: Run[]) =>
  `${msPerStep(runs).toFixed(1)} ms per layer-step (${(sum(runs, (r) => r.steps) / runs.length).toFixed(0)} ` +
  `steps, ${(sum(runs, (r) => r.seconds) / runs.length).toFixed(1)} s per layer), profile mean ` +
  meanOf(runs).toFixed(5);

const model = await openModel(STORIES);
const engine = await Engine.create();
try {
  const runner = new ModelRunner(engine, model);
  const tok = await loadTokenizer(STORIES);
  const { windows } = await loadWindows(STORIES_TEXT, tok, { window: WINDOW, count: CALIB_WINDOWS });
  const fitWindows = windows.slice(0, windows.length - HELD_OUT);
  const held = windows.slice(windows.length - HELD_OUT);
  const grams = await captureGrams(runner, fitWindows);
  console.log(
    `stories260K: windows of ${WINDOW}, ${TRAIN_WINDOWS} training and ${HELD_OUT} held-out windows, ` +
      `8 × 8 grid, layers ${layers.join(', ')}`,
  );
  const before: Run[] = [];
  const after: Run[] = [];
  for await (const s of layerSamples(runner, [held, fitWindows.slice(0, TRAIN_WINDOWS)])) {
    if (!layers.includes(s.layer)) continue;
    const ctx: StiefContext = {
      capture: { layer: s.layer, weights: s.weights, grams: grams[s.layer] },
      spec: model.spec,
      keySpace: 'pre-rope',
      runner,
      train: s.sets[1],
      // the job's meter on a narrow model: every position of every held-out window
      meter: new LayerErrorSweep(runner, s.weights, s.sets[0], { seed: 0 }),
      grid: rankGrid(model.spec.headDim),
    };
    before.push(await run(ctx, STIEF_PAPER_ORDER));
    after.push(await run(ctx, {}));
    const row = (r: Run) => `${r.steps} steps, ${r.seconds.toFixed(1)} s, mean ${r.mean.toFixed(5)}`;
    console.log(`layer ${s.layer}: before ${row(before.at(-1)!)}; after ${row(after.at(-1)!)}`);
  }
  console.log(`before: ${describe(before)}`);
  console.log(`after:  ${describe(after)}`);
  const perLayer = (runs: Run[]) => sum(runs, (r) => r.seconds);
  console.log(
    `ratio:  ${(msPerStep(before) / msPerStep(after)).toFixed(2)}× faster per layer-step, ` +
      `${(perLayer(before) / perLayer(after)).toFixed(2)}× per layer; profile mean ` +
      `${((100 * (meanOf(after) - meanOf(before))) / meanOf(before)).toFixed(1)} %`,
  );
} finally {
  await engine.release();
  await model.close();
}
