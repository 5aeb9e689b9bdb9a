import { BUNDLED_MODEL_DIR } from '../../model/bundled.ts';
import fs from 'node:fs';
import path from 'node:path';
import { badInput } from '../../core/errors.ts';
import { openModel } from '../../model/model.ts';
import { modelInfo } from '../../model/info.ts';
import { parseCommand, snakeKeys } from '../args.ts';
import { DEMO_COMMAND } from './demo-spec.ts';
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
/**
 * The demo's model is the bundled stories260K (main/model/bundled.ts). Its texts (assets/demo,
 * CDLA-Sharing-1.0) are TinyStories validation stories, which the model was not trained on.
 */
export const DEMO_MODEL_DIR = BUNDLED_MODEL_DIR;
const DEMO_WINDOW = 128;
/** Mean relative layer-output error the demo's allocation may spend. */
export const DEMO_BUDGET = 0.1;
/** Marks a folder the demo wrote, so a later run may replace what it holds. */
const STAMP = '.rankwise-demo';
/** What demos before the bundled model left: a generated synthetic model, stamped with its recipe. */
const LEGACY_MODEL = 'model';
const LEGACY_STAMP = '.rankwise-recipe';

/**
 * Makes `out` the demo's folder: a new or empty folder, or one an earlier demo run wrote (its stamp says
 * so). Any other folder is refused before anything is written, so `--out` never replaces a folder of yours.
 */
export function claimDemoFolder(out: string): void {
  const stat = fs.statSync(out, { throwIfNoEntry: false });
  if (stat !== undefined) {
    if (!stat.isDirectory()) throw badInput('is not a folder; choose another --out folder', out);
    const legacy = path.join(out, LEGACY_MODEL);
    const legacyOurs = fs.existsSync(path.join(legacy, LEGACY_STAMP));
    const ours = fs.existsSync(path.join(out, STAMP)) || legacyOurs;
    if (!ours && fs.readdirSync(out).length > 0) {
      throw badInput('exists and was not written by rankwise demo; choose another --out folder', out);
    }
    // the synthetic model an older demo generated here is no longer used
    if (legacyOurs) fs.rmSync(legacy, { recursive: true, force: true });
  }
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(
    path.join(out, STAMP),
    'This folder was written by `rankwise demo`; its next run replaces it.\n',
  );
}

export async function demoCommand(argv: string[]): Promise<void> {
  const { values } = parseCommand(argv, DEMO_COMMAND);
  const out = path.resolve(values.out);
  const modelDir = DEMO_MODEL_DIR;
  const log = (s: string) => {
    if (!values.json) process.stdout.write(`${s}\n`);
  };

  claimDemoFolder(out);
  log(
    'The demo model is stories260K (Andrej Karpathy, MIT), a 260K-parameter Llama trained on TinyStories,\n' +
      'shipped in assets/stories260K; its texts are TinyStories validation stories (CDLA-Sharing-1.0).\n',
  );

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
  log(`Perplexity on held-out TinyStories text, before compression:\n${evalTable(report)}\n`);

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
