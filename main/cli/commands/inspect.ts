import type { ModelInfo } from '../../contract/model.ts';
import { COMMON, parseCommand, snakeKeys, usage, type CommandSpec } from '../args.ts';
import { withEngine } from '../engine-client.ts';
import { formatBytes, table } from '../output.ts';

export const INSPECT_COMMAND = {
  name: 'inspect',
  summary: "a model's architecture card, and its KV cache per token and per sequence",
  args: [
    {
      name: 'MODEL_DIR',
      help: 'a Hugging Face model folder (config.json, model.safetensors, tokenizer), or an export',
    },
  ],
  options: { ...COMMON },
  examples: ['rankwise inspect ../shared/testdata/stories260K-llama', 'rankwise inspect ./my-export --json'],
} satisfies CommandSpec;

export const INSPECT_USAGE = usage(INSPECT_COMMAND);

export async function inspectCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommand(argv, INSPECT_COMMAND);
  const [dir] = positionals;
  // the app's own answer: the same checks and card as the wizard's model step
  const { dir: modelDir, ...info } = await withEngine((api) => api.inspect(dir));
  process.stdout.write(
    values.json
      ? `${JSON.stringify({ model: modelDir, ...(snakeKeys(info) as object) })}\n`
      : `${card(modelDir, info)}\n`,
  );
}

/** The architecture card: what a practitioner needs to judge the cache before compressing it. */
export function card(dir: string, info: ModelInfo): string {
  const gqa = info.kvHeads < info.heads ? ` (GQA, ${info.heads / info.kvHeads} query heads per KV head)` : '';
  const rows: [string, string][] = [
    ['model', dir],
    ['architecture', `${info.modelType} (${info.family} family)`],
    ['layers', String(info.layers)],
    ['heads', `${info.heads} query, ${info.kvHeads} key/value${gqa}`],
    ['head dim', String(info.headDim)],
    ['hidden size', String(info.hiddenSize)],
    ['vocabulary', String(info.vocabSize)],
    ['context', `${info.maxPositions} tokens`],
    ['positions', info.rope === null ? 'learned (no RoPE)' : `RoPE, theta ${info.rope}`],
    ['dtype', info.dtype],
    ['parameters', info.parameters.toLocaleString('en-US')],
    info.kvCompression
      ? [
          'KV cache per token',
          `${info.kvBytesPerToken.toLocaleString('en-US')} B, compressed by Rankwise from ${info.kvCompression.originalKvBytesPerToken.toLocaleString('en-US')} B (${((100 * info.kvBytesPerToken) / info.kvCompression.originalKvBytesPerToken).toFixed(1)} % kept)`,
        ]
      : [
          'KV cache per token',
          `${info.kvBytesPerToken.toLocaleString('en-US')} B (2 × ${info.layers} layers × ${info.kvHeads} heads × ${info.headDim})`,
        ],
    ...(info.kvCompression
      ? [
          ['cache ranks (k/v)', info.kvCompression.layers.map((l) => `${l.kRank}/${l.vRank}`).join(' ')] as [
            string,
            string,
          ],
        ]
      : []),
    ...info.kvBytesPerSequence.map(({ tokens, bytes }): [string, string] => [
      `KV cache at ${tokens / 1024}K`,
      `${formatBytes(bytes)} per sequence`,
    ]),
  ];
  return table(rows);
}
