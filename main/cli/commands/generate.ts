import path from 'node:path';

import { badInput } from '../../core/errors.ts';
import { readPromptsFile } from '../../generate/prompts.ts';
import type { SamplingSettings } from '../../generate/sampling.ts';
import type { TryPromptResult, TryRunResult, TrySideResult } from '../../contract/try.ts';
import { runTry } from '../../generate/try-run.ts';
import { readTextSource } from '../../data/read.ts';
import {
  COMMON,
  deviceOption,
  int,
  num,
  parseCommand,
  snakeKeys,
  text,
  usage,
  type CommandSpec,
} from '../args.ts';
import { formatBytes, table } from '../output.ts';

/** Tokens generated per prompt when --max-new-tokens is not given. */
export const DEFAULT_MAX_NEW_TOKENS = 128;

export const GENERATE_COMMAND = {
  name: 'generate',
  summary: 'stream a continuation from a model or an export, optionally beside the original',
  args: [
    { name: 'MODEL_DIR', help: 'an export (run through its onnx/model.onnx), or an original model folder' },
  ],
  oneOf: [[['prompt'], ['prompt-file'], ['prompts']]],
  options: {
    prompt: text('TEXT', 'the prompt', { group: 'Prompt (exactly one)' }),
    'prompt-file': text('FILE', 'a file whose whole text is one prompt', { group: 'Prompt (exactly one)' }),
    prompts: text('FILE', 'one prompt per line, or .jsonl with a prompt field: report over many prompts', {
      group: 'Prompt (exactly one)',
    }),
    'max-new-tokens': int('N', 'stop after N new tokens (or at end of sequence, the context, Ctrl-C)', {
      default: DEFAULT_MAX_NEW_TOKENS,
      group: 'Decoding',
    }),
    temperature: num('T', 'sample at this temperature (0: greedy)', {
      defaultText: 'greedy decoding',
      group: 'Decoding',
    }),
    'top-k': int('K', 'sample among the K most likely tokens (0: all)', {
      min: 0,
      defaultText: 'every token',
      group: 'Decoding',
    }),
    'top-p': num('P', 'sample among the most likely tokens whose probability reaches P', {
      defaultText: 'every token',
      group: 'Decoding',
    }),
    seed: int('S', 'seed of the sampler, so a sampled run repeats exactly', {
      min: 0,
      defaultText: "the sampler's fixed seed",
      group: 'Decoding',
    }),
    compare: text('DIR', 'run this original model beside it and compare texts, first divergence and KL', {
      group: 'Decoding',
    }),
    device: deviceOption('Decoding'),
    ...COMMON,
  },
  examples: [
    'rankwise generate ./my-export --prompt "Once upon a time" --max-new-tokens 32',
    'rankwise generate ./my-export --prompts prompts.txt --compare ./original-model --json',
    'rankwise generate ./my-export --prompt "Once" --temperature 0.8 --top-p 0.9 --seed 7',
  ],
} satisfies CommandSpec;

export const GENERATE_USAGE = usage(GENERATE_COMMAND);

async function promptsOf(values: {
  prompt?: string;
  'prompt-file'?: string;
  prompts?: string;
}): Promise<string[]> {
  const given = (['prompt', 'prompt-file', 'prompts'] as const).filter((k) => values[k] !== undefined);
  if (given.length !== 1) {
    throw badInput(`give exactly one of --prompt, --prompt-file or --prompts; usage: ${GENERATE_USAGE}`);
  }
  if (values.prompt !== undefined) return [String(values.prompt)];
  if (values.prompts !== undefined) return readPromptsFile(String(values.prompts));
  // a prompt file is one prompt, whatever its lines
  return [await readTextSource(String(values['prompt-file']))];
}

function sideRows(s: TrySideResult): [string, string][] {
  const stopped = {
    eos: 'at end of sequence',
    limit: 'at the token limit',
    context: "at the model's context",
    stopped: 'by request',
  };
  return [
    ['model', `${s.label}${s.exported ? ' (its exported ONNX decoder)' : ''}`],
    ['generated', `${s.ids.length} tokens (stopped ${stopped[s.stopReason]})`],
    [
      'prefill',
      `${s.promptTokens} tokens in ${s.prefillSeconds.toFixed(3)} s (${Math.round(s.prefillTokensPerSecond).toLocaleString('en-US')} tokens/s)`,
    ],
    [
      'decode',
      s.decodeTokensPerSecond === null
        ? '—'
        : `${s.ids.length - 1} tokens in ${s.decodeSeconds.toFixed(3)} s (${s.decodeTokensPerSecond.toFixed(1)} tokens/s)`,
    ],
    [
      'KV cache held',
      `${formatBytes(s.kvCacheBytes)} (${s.kvBytesPerToken.toLocaleString('en-US')} B per token)`,
    ],
    ['device', s.device],
  ];
}

function comparisonRows(r: TryPromptResult): [string, string][] {
  const c = r.comparison!;
  const ids = r.compare!.ids;
  const same = Math.round(c.identicalShare * ids.length);
  return [
    [
      'first divergence',
      c.firstDivergence === null ? 'none: the texts are identical' : `token ${c.firstDivergence + 1}`,
    ],
    ['identical tokens', `${same} of ${ids.length} (${(100 * c.identicalShare).toFixed(1)} %)`],
    ['mean KL', `${c.meanKl.toExponential(3)} nats over ${c.klPositions} positions of the original's text`],
  ];
}

function summaryText(result: TryRunResult): string {
  const s = result.summary!;
  const diverged = s.firstDivergences.filter((d): d is number => d !== null);
  return table([
    ['prompts', `${result.prompts.length} (${s.identicalPrompts} identical)`],
    ['identical tokens', `${(100 * s.meanIdenticalShare).toFixed(1)} % (mean over prompts)`],
    ['mean KL', `${s.meanKl.toExponential(3)} nats (over every position)`],
    [
      'first divergence',
      diverged.length === 0
        ? 'none'
        : `median token ${[...diverged].sort((a, b) => a - b)[Math.floor(diverged.length / 2)] + 1}`,
    ],
  ]);
}

export async function generateCommand(argv: string[]): Promise<TryRunResult> {
  const { values, positionals } = parseCommand(argv, GENERATE_COMMAND);
  const [dir] = positionals;
  const prompts = await promptsOf(values);
  const maxNewTokens = values['max-new-tokens'];
  const sampling: SamplingSettings = {
    temperature: values.temperature,
    topK: values['top-k'],
    topP: values['top-p'],
    seed: values.seed,
  };
  const json = Boolean(values.json);
  const out = (s: string) => process.stdout.write(s);

  // Ctrl-C stops the generation where it is; what was generated is still reported
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  let printedPrompt = -1;
  try {
    const result = await runTry(
      {
        model: { dir },
        compare: values.compare === undefined ? undefined : { dir: values.compare },
        prompts,
        maxNewTokens,
        sampling,
      },
      {
        device: values.device,
        signal: controller.signal,
        onToken: (t) => {
          if (json || t.side !== 'model') return;
          if (t.prompt !== printedPrompt) {
            printedPrompt = t.prompt;
            out(prompts.length > 1 ? `\n[prompt ${t.prompt + 1}] ${prompts[t.prompt]}` : prompts[t.prompt]);
          }
          out(t.text);
        },
      },
    );
    if (json) {
      out(`${JSON.stringify(snakeKeys(result))}\n`);
      return result;
    }
    for (const [i, r] of result.prompts.entries()) {
      if (i === 0 || prompts.length === 1) out('\n');
      if (r.compare) {
        out(`\n── compared with ${path.basename(r.compare.label)} ──\n${r.prompt}${r.compare.text}\n`);
        if (r.comparison) out(`\n${table(comparisonRows(r))}\n`);
      }
    }
    const last = result.prompts.at(-1);
    if (last) {
      out(`\n${table(sideRows(last.model))}\n`);
      if (last.compare && prompts.length === 1) out(`\n${table(sideRows(last.compare))}\n`);
    }
    if (result.summary && prompts.length > 1) out(`\n${summaryText(result)}\n`);
    if (controller.signal.aborted) process.stderr.write('rankwise generate: stopped (Ctrl-C)\n');
    return result;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
