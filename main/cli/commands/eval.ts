import path from 'node:path';
import { badInput } from '../../core/errors.ts';
import { kvBytesPerToken, originalKvBytesPerToken } from '../../model/info.ts';
import { openModel } from '../../model/model.ts';
import { loadTokenizer } from '../../model/tokenizer.ts';
import { loadWindows } from '../../data/windows.ts';
import { DEVICES, Engine, type Device } from '../../runtime/engine.ts';
import { ModelRunner } from '../../runtime/runner.ts';
import { perplexity } from '../../runtime/perplexity.ts';
import {
  COMMON,
  DEFAULT_DEVICE,
  deviceOption,
  int,
  parseCommand,
  text,
  usage,
  windowOption,
  type CommandSpec,
} from '../args.ts';
import { stderrProgress, table } from '../output.ts';

/** Data files every command reads, as help says them. */
export const DATA_FORMATS = '.txt, .jsonl/.json (field text), their .gz, or .parquet (column text)';

export const EVAL_COMMAND = {
  name: 'eval',
  summary: 'perplexity of a model on a text, by the text protocol of GPTQ, Palu and EigenAttention',
  args: [{ name: 'MODEL_DIR', help: 'a Hugging Face model folder, or an export' }],
  options: {
    data: text('FILE', `the text to score: ${DATA_FORMATS}`, { required: true }),
    window: windowOption(),
    'max-windows': int('N', 'score at most the first N windows (a shorter text scores the windows it has)', {
      defaultText: 'every window of the text',
    }),
    device: deviceOption(),
    ...COMMON,
  },
  examples: [
    'rankwise eval ../shared/testdata/stories260K-llama --data tinystories.txt --max-windows 8',
    'rankwise eval ./my-export --data wiki.test.txt.gz --window 2048 --device auto --json',
  ],
  notes: [
    'The text is tokenised as one string, cut into consecutive windows of --window tokens (a last ' +
      'partial window is dropped), and each window is scored on its tokens 2…N.',
  ],
} satisfies CommandSpec;

export const EVAL_USAGE = usage(EVAL_COMMAND);

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

/** --device for code that holds it as text: the same check and default as the option tables'. */
export function parseDevice(value: string | undefined): Device {
  if (value === undefined) return DEFAULT_DEVICE;
  if (!(DEVICES as readonly string[]).includes(value)) {
    throw badInput(`--device must be one of ${DEVICES.join(', ')}, got "${value}"`);
  }
  return value as Device;
}

export async function evalCommand(argv: string[]): Promise<EvalReport> {
  const { values, positionals } = parseCommand(argv, EVAL_COMMAND);
  const report = await evaluate({
    modelDir: positionals[0],
    data: values.data,
    window: values.window,
    maxWindows: values['max-windows'],
    device: values.device,
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
