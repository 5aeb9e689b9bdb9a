import path from 'node:path';
import { badInput } from '../../core/errors.ts';
import { kvBytesPerToken, originalKvBytesPerToken } from '../../model/info.ts';
import { openModel } from '../../model/model.ts';
import { loadTokenizer } from '../../model/tokenizer.ts';
import { loadWindows } from '../../data/windows.ts';
import { DEVICES, Engine, type Device } from '../../runtime/engine.ts';
import { ModelRunner } from '../../runtime/runner.ts';
import { perplexity } from '../../runtime/perplexity.ts';
import { COMMON_OPTIONS, intOption, onePositional, parse } from '../args.ts';
import { stderrProgress, table } from '../output.ts';

export const EVAL_USAGE =
  'rankwise eval MODEL_DIR --data FILE [--window 512] [--max-windows N] [--device cpu|auto|cuda|…] [--json]';

export interface EvalReport {
  model: string;
  data: string;
  window: number;
  windows: number;
  tokens: number;
  perplexity: number;
  mean_nll: number;
  device: string;
  seconds: number;
  tokens_per_second: number;
  /** The model's KV cache per token; for a Rankwise checkpoint, the compressed one and the original. */
  kv_bytes_per_token: number;
  kv_compression?: { original_kv_bytes_per_token: number };
}

export function parseDevice(value: string | undefined): Device {
  if (value === undefined) return 'cpu';
  if (!(DEVICES as readonly string[]).includes(value)) {
    throw badInput(`--device must be one of ${DEVICES.join(', ')}, got "${value}"`);
  }
  return value as Device;
}

export async function evalCommand(argv: string[]): Promise<EvalReport> {
  const { values, positionals } = parse(argv, {
    ...COMMON_OPTIONS,
    data: { type: 'string' },
    window: { type: 'string' },
    'max-windows': { type: 'string' },
    device: { type: 'string' },
  });
  const dir = onePositional(positionals, 'MODEL_DIR', EVAL_USAGE);
  if (!values.data) throw badInput(`missing --data FILE; usage: ${EVAL_USAGE}`);
  const report = await evaluate({
    modelDir: dir,
    data: values.data,
    window: intOption(values.window, 'window', 512, 2),
    maxWindows:
      values['max-windows'] === undefined ? undefined : intOption(values['max-windows'], 'max-windows', 1),
    device: parseDevice(values.device),
    progress: !values.quiet,
  });
  process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${evalTable(report)}\n`);
  return report;
}

export interface EvaluateOptions {
  modelDir: string;
  data: string;
  window: number;
  maxWindows?: number;
  device: Device;
  progress: boolean;
}

/** The text protocol of ARCHITECTURE.md §9 on one model: consecutive windows, each scored on tokens 2…L. */
export async function evaluate(o: EvaluateOptions): Promise<EvalReport> {
  const model = await openModel(o.modelDir);
  let engine: Engine;
  try {
    engine = await Engine.create({ device: o.device });
  } catch (e) {
    await model.close();
    throw e;
  }
  try {
    if (o.window > model.spec.maxPositions) {
      throw badInput(
        `--window ${o.window} is longer than the model's context of ${model.spec.maxPositions} tokens`,
        path.join(model.dir, 'config.json'),
      );
    }
    const tokenizer = await loadTokenizer(model.dir);
    // --max-windows is an upper bound: a shorter text evaluates every window it has. The text is read only
    // as far as those windows need, so the first windows of a huge file cost what they use.
    const { windows } = await loadWindows(o.data, tokenizer, {
      window: o.window,
      sampling: 'first',
      maxCount: o.maxWindows,
    });
    const result = await perplexity(new ModelRunner(engine, model), windows, {
      onProgress: stderrProgress(o.progress),
    });
    return {
      model: model.dir,
      data: path.resolve(o.data),
      window: o.window,
      windows: windows.length,
      tokens: result.tokens,
      perplexity: result.perplexity,
      mean_nll: result.meanNll,
      device: engine.provider,
      seconds: result.seconds,
      tokens_per_second: (windows.length * o.window) / result.seconds,
      kv_bytes_per_token: kvBytesPerToken(model.spec),
      ...(model.spec.kvCompression
        ? { kv_compression: { original_kv_bytes_per_token: originalKvBytesPerToken(model.spec) } }
        : {}),
    };
  } finally {
    await engine.release();
    await model.close();
  }
}

export function evalTable(r: EvalReport): string {
  return table([
    ['model', r.model],
    ['data', r.data],
    ['windows', `${r.windows} × ${r.window} tokens (${r.tokens.toLocaleString('en-US')} predicted)`],
    ['perplexity', r.perplexity.toFixed(4)],
    ['mean NLL', `${r.mean_nll.toFixed(4)} nats/token`],
    [
      'KV cache per token',
      r.kv_compression
        ? `${r.kv_bytes_per_token.toLocaleString('en-US')} B (Rankwise-compressed from ${r.kv_compression.original_kv_bytes_per_token.toLocaleString('en-US')} B)`
        : `${r.kv_bytes_per_token.toLocaleString('en-US')} B`,
    ],
    ['device', r.device],
    [
      'time',
      `${r.seconds.toFixed(2)} s (${Math.round(r.tokens_per_second).toLocaleString('en-US')} tokens/s)`,
    ],
  ]);
}
