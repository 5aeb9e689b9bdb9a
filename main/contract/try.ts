/**
 * Try it on the wire: the tokens a run streams and what it answers (`getTryResult`), the same objects
 * `rankwise generate` prints.
 */

export type TrySide = 'model' | 'compare';

export type StopReason = 'eos' | 'limit' | 'context' | 'stopped';

/** One generated token, as it streams. */
export interface TryToken {
  prompt: number;
  side: TrySide;
  index: number;
  id: number;
  /** The text this token adds (empty while a multi-byte character is incomplete). */
  text: string;
  /** Tokens per second of this side so far (prefill included). */
  tokensPerSecond: number;
  /** Bytes of this side's KV cache now. */
  kvCacheBytes: number;
}

/** One continuation of one prompt by one model. */
export interface Generation {
  promptTokens: number;
  /** The generated ids (the end-of-sequence token included when one ended it). */
  ids: number[];
  text: string;
  stopReason: StopReason;
  prefillSeconds: number;
  decodeSeconds: number;
  prefillTokensPerSecond: number;
  /** Tokens after the first per second of decoding (null when fewer than two were generated). */
  decodeTokensPerSecond: number | null;
  /** Bytes of the cache tensors held at the end, and per cached token. */
  kvCacheBytes: number;
  kvBytesPerToken: number;
  device: string;
}

/** How far a compressed model's text strays from the original's on the same prompt. */
export interface Comparison {
  /** Index of the first generated token where the two differ (null when identical). */
  firstDivergence: number | null;
  /** Positions of the original's continuation where the compressed model chose the same token. */
  identicalShare: number;
  /** Mean KL(original ‖ compressed) in nats over `klPositions` next-token distributions. */
  meanKl: number;
  klPositions: number;
}

export interface TrySideResult extends Generation {
  label: string;
  /** The export's own ONNX file (true) or a decoder built in memory from the checkpoint or the plan. */
  exported: boolean;
}

export interface TryPromptResult {
  prompt: string;
  model: TrySideResult;
  compare?: TrySideResult;
  /** With `compare` and greedy decoding: how the model's text departs from the reference's. */
  comparison?: Comparison;
}

export interface TryRunResult {
  prompts: TryPromptResult[];
  /** Over every prompt, with `compare` and greedy decoding. */
  summary?: {
    meanIdenticalShare: number;
    /** KL averaged over every teacher-forced position of every prompt. */
    meanKl: number;
    firstDivergences: (number | null)[];
    identicalPrompts: number;
  };
}
