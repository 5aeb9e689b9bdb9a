import fs from 'node:fs';
import path from 'node:path';
import { badInput } from '../../core/errors.ts';
import { openModel } from '../../model/model.ts';
import { modelInfo } from '../../model/info.ts';
import {
  DEMO_RECIPE_PATH,
  readRecipe,
  recipeFingerprint,
  writeSyntheticModel,
} from '../../model/synthetic.ts';
import { COMMON_OPTIONS, parse, snakeKeys } from '../args.ts';
import { card } from './inspect.ts';
import { evalTable, evaluate } from './eval.ts';
import { compressTable } from './compress.ts';
import { compressToPlan } from '../../jobs/compress.ts';
import { exportPlan, REPORT_HTML } from '../../export/export.ts';
import { exportSummary, exportText } from './export.ts';
import { stderrProgress } from '../output.ts';
import { DEMO_EVAL_PATH, DEMO_TEXT_PATH } from '../../data/builtin.ts';

export const DEMO_USAGE = 'rankwise demo [--out DIR] [--json]';

export { DEMO_EVAL_PATH, DEMO_TEXT_PATH };
const DEMO_WINDOW = 128;
/** Mean relative layer-output error the demo's allocation may spend. */
export const DEMO_BUDGET = 0.05;
const STAMP = '.rankwise-recipe';

/** Writes the demo model unless the folder already holds this exact recipe's output. */
export async function ensureDemoModel(dir: string): Promise<{ generated: boolean }> {
  const recipe = await readRecipe(DEMO_RECIPE_PATH);
  const fingerprint = recipeFingerprint(recipe);
  const stamp = path.join(dir, STAMP);
  const ours = fs.existsSync(stamp);
  if (ours && fs.readFileSync(stamp, 'utf8') === fingerprint) return { generated: false };
  // only a folder the demo itself wrote (its stamp says so) is ever replaced
  if (!ours && fs.existsSync(dir)) {
    throw badInput('exists and was not written by rankwise demo; choose another --out folder', dir);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  await writeSyntheticModel(dir, recipe);
  fs.writeFileSync(stamp, fingerprint);
  return { generated: true };
}

export async function demoCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...COMMON_OPTIONS, out: { type: 'string' } });
  const out = path.resolve(values.out ?? 'rankwise-demo');
  const modelDir = path.join(out, 'model');
  const log = (s: string) => {
    if (!values.json) process.stdout.write(`${s}\n`);
  };

  const { generated } = await ensureDemoModel(modelDir);
  log(`${generated ? 'Generated' : 'Reusing'} the synthetic demo model in ${modelDir}\n`);

  const model = await openModel(modelDir);
  const info = modelInfo(model);
  await model.close();
  log(`${card(modelDir, info)}\n`);

  const report = await evaluate({
    modelDir,
    data: DEMO_EVAL_PATH,
    window: DEMO_WINDOW,
    device: 'cpu',
    progress: !values.quiet,
  });
  log(`Perplexity on the demo text (the model's weights are random, so it is high):\n${evalTable(report)}\n`);

  log(`Compressing with KQ-SVD under an error budget of ${DEMO_BUDGET} (mean relative layer-output error):`);
  const progress = stderrProgress(!values.quiet);
  const { report: compressed, plan } = await compressToPlan(
    {
      modelDir,
      calib: DEMO_TEXT_PATH,
      eval: DEMO_EVAL_PATH,
      method: 'kqsvd',
      budget: DEMO_BUDGET,
      window: DEMO_WINDOW,
      calibWindows: 16,
    },
    { onProgress: progress },
  );
  log(compressTable(compressed));

  // each demo run replaces its own earlier export; verification still guards the swap
  const exportDir = path.join(out, 'export');
  log(`\nExporting the compressed model to ${exportDir} (written, reloaded and checked before it is kept):`);
  const exported = await exportPlan(plan, { out: exportDir, force: true, onProgress: progress });
  log(exportText(exported));
  log(`\nOpen the report: ${path.join(exportDir, REPORT_HTML)}`);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({
        model: modelDir,
        info,
        eval: report,
        // the CLI's JSON keeps the report's snake_case keys, as `compress --json` prints them
        compress: snakeKeys(compressed),
        export: exportSummary(exported),
      })}\n`,
    );
  }
}
