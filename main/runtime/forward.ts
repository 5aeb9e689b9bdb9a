import { badInput, RankwiseError } from '../core/errors.ts';
import { itemProgressTracker, throwIfCancelled, type Progress } from '../core/progress.ts';
import type { Checkpoint } from '../model/checkpoint.ts';
import type { ArchAdapter } from '../model/arch/registry.ts';
import { layersAhead, layerWeightFeeds, type ModelRunner, type WeightSource } from './runner.ts';
import { compressionInputs } from './projection.ts';

export interface ForwardOptions {
  /** Which logits to return: none (perplexity only), every position, or each sequence's last. */
  logits?: 'none' | 'all' | 'last';
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /** Stage name reported in progress events. */
  stage?: string;
  /** Memory for the hidden states of one group of sequences; larger inputs run group by group. */
  groupBytes?: number;
  /** Memory for one layer run's activations (attention scores dominate at long context). */
  batchBytes?: number;
}

export interface ForwardResult {
  /** Per sequence, T−1 values: −log p(token t+1 | tokens ≤ t). */
  nll: Float32Array[];
  /** Per sequence: [T, V] for 'all', [V] for 'last'. */
  logits?: Float32Array[];
}

export interface MicroBatch {
  /** Indices into the caller's sequence list. */
  members: number[];
  T: number;
  ids: Int32Array;
  hidden: Float32Array | null;
}

const MiB = 1024 * 1024;

/**
 * Plans groups (bounded hidden-state memory) of micro-batches (equal-length sequences run together).
 * Sequences are ordered by length so ragged inputs (paragraphs, prompts) still batch well.
 */
export function plan(runner: ModelRunner, sequences: Int32Array[], opts: ForwardOptions): MicroBatch[][] {
  const spec = runner.spec;
  const D = spec.hiddenSize;
  const groupBytes = opts.groupBytes ?? 1024 * MiB;
  const batchBytes = opts.batchBytes ?? 128 * MiB;
  const order = sequences.map((_, i) => i).sort((a, b) => sequences[a].length - sequences[b].length);
  const groups: MicroBatch[][] = [];
  let group: MicroBatch[] = [];
  let groupUsed = 0;
  let batch: MicroBatch | null = null;
  for (const i of order) {
    const T = sequences[i].length;
    if (T < 1) throw new RankwiseError('bad-input', 'an empty token sequence cannot be evaluated');
    // onnxruntime holds about four T×T tensors per head at once (scores, masked scores, probabilities and
    // the arena's slack), plus the widest activations of the layer.
    const perSeq = 4 * (4 * spec.numHeads * T * T + T * (8 * D + 3 * spec.intermediateSize));
    const maxBatch = Math.max(1, Math.floor(batchBytes / perSeq));
    const hiddenBytes = 4 * T * D;
    if (group.length > 0 && groupUsed + hiddenBytes > groupBytes) {
      groups.push(group);
      group = [];
      groupUsed = 0;
      batch = null;
    }
    if (!batch || batch.T !== T || batch.members.length >= maxBatch) {
      batch = { members: [], T, ids: new Int32Array(0), hidden: null };
      group.push(batch);
    }
    batch.members.push(i);
    groupUsed += hiddenBytes;
  }
  if (group.length > 0) groups.push(group);
  for (const g of groups) {
    for (const b of g) {
      b.ids = new Int32Array(b.members.length * b.T);
      b.members.forEach((m, k) => b.ids.set(sequences[m], k * b.T));
    }
  }
  return groups;
}

/** Index of the first NaN or ±Infinity in `a`, or −1. */
export function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (x - x !== 0) return i;
  }
  return -1;
}

/**
 * The checkpoint file that holds the first tensor `match` accepts, when the weights come from a model
 * folder (a ModelHandle); undefined for weights built in memory.
 */
export function weightsFile(source: WeightSource, match: (name: string) => boolean): string | undefined {
  const ckpt = (source as { checkpoint?: Checkpoint }).checkpoint;
  if (!ckpt || typeof ckpt.names !== 'function') return undefined;
  const name = ckpt.names().find(match);
  return name ? ckpt.info(name).file : ckpt.dir;
}

/** The tensor-name prefix of layer i (`model.layers.3.`, `h.3.`) when the source knows its adapter. */
function layerPrefix(source: WeightSource, layer: number): string | undefined {
  const { checkpoint, adapter } = source as { checkpoint?: Checkpoint; adapter?: ArchAdapter };
  if (!checkpoint || !adapter) return undefined;
  return adapter.attentionPrefix(checkpoint, layer).replace(/(self_attn|attn)\.$/, '');
}

/** Names of the output head's tensors: an untied LM head, else the (tied) token embeddings. */
export const HEAD_TENSOR = /(^|\.)(lm_head|embed_tokens|wte)\.weight$/;

/**
 * Finite weights (loading checks each tensor) can still overflow float32 on real text: huge values that a
 * bit flip or a bad conversion left behind. Such a layer would turn every result into NaN; refuse it where
 * it happens, naming the layer and the file that holds it.
 */
export function checkLayerOutput(runner: ModelRunner, layer: number, y: Float32Array, D: number): void {
  const at = firstNonFinite(y);
  if (at < 0) return;
  const prefix = layerPrefix(runner.source, layer);
  const file = prefix ? weightsFile(runner.source, (n) => n.startsWith(prefix)) : undefined;
  const what =
    `layer ${layer}${prefix ? ` (tensors "${prefix}*")` : ''} turns finite inputs into ${String(y[at])} ` +
    `(token ${Math.floor(at / D)}, feature ${at % D})`;
  if (!file) throw new RankwiseError('internal', `${what}: the in-memory weights overflow float32`);
  throw badInput(`${what}: its weights overflow float32; the checkpoint is damaged or out of range`, file);
}

function checkHeadOutput(runner: ModelRunner, nll: Float32Array): void {
  const at = firstNonFinite(nll);
  if (at < 0) return;
  const file = weightsFile(runner.source, (n) => HEAD_TENSOR.test(n));
  const what = `the final norm and output head give a non-finite log-probability (${String(nll[at])})`;
  if (!file) throw new RankwiseError('internal', `${what} from in-memory weights`);
  throw badInput(`${what}: their weights overflow float32; the checkpoint is damaged or out of range`, file);
}

/** Next-token targets of a batch: token t+1 for position t; the last position of each sequence gets 0. */
function nextTokenTargets(ids: Int32Array, B: number, T: number): Int32Array {
  const targets = new Int32Array(ids.length);
  targets.set(ids.subarray(1));
  for (let b = 0; b < B; b++) targets[b * T + T - 1] = 0;
  return targets;
}

/**
 * Final norm and head over a batch's hidden states [B·T·D]: each position's NLL of the next token (the
 * last position of each sequence scores token 0 and is to be dropped), and every logit on request.
 */
export async function batchHead(
  runner: ModelRunner,
  hidden: Float32Array,
  ids: Int32Array,
  B: number,
  T: number,
  wantLogits = false,
): Promise<{ nll: Float32Array; logits: Float32Array | null }> {
  const { hiddenSize: D, vocabSize: V } = runner.spec;
  const targets = nextTokenTargets(ids, B, T);
  // Bound the [rows, V] logits of one head call; large calls amortise packing the LM head weights.
  const rowsPerCall = Math.max(T, Math.floor((256 * MiB) / (4 * V) / T) * T);
  const nll = new Float32Array(B * T);
  const logits = wantLogits ? new Float32Array(B * T * V) : null;
  for (let r = 0; r < B * T; r += rowsPerCall) {
    const n = Math.min(rowsPerCall, B * T - r);
    const out = await runner.head(
      hidden.subarray(r * D, (r + n) * D),
      n,
      targets.subarray(r, r + n),
      wantLogits,
    );
    checkHeadOutput(runner, out.nll);
    nll.set(out.nll, r);
    if (logits && out.logits) logits.set(out.logits, r * V);
  }
  return { nll, logits };
}

/**
 * The whole model, layer by layer: each group of sequences is embedded, then every layer's weights are
 * loaded once and applied to all of the group's micro-batches before the next layer is read, so memory
 * holds one layer's weights plus the group's hidden states.
 */
export async function forwardSequences(
  runner: ModelRunner,
  sequences: Int32Array[],
  opts: ForwardOptions = {},
): Promise<ForwardResult> {
  const spec = runner.spec;
  const D = spec.hiddenSize;
  const V = spec.vocabSize;
  const wantLogits = opts.logits ?? 'none';
  const groups = plan(runner, sequences, opts);
  const nll: Float32Array[] = new Array(sequences.length);
  const logits: Float32Array[] | undefined = wantLogits === 'none' ? undefined : new Array(sequences.length);
  const tick = itemProgressTracker(
    opts.stage ?? 'forward',
    groups.length * (spec.numLayers + 2),
    sequences.length,
    opts.onProgress,
  );

  for (const group of groups) {
    throwIfCancelled(opts.signal);
    for (const b of group) b.hidden = await runner.embed(b.ids, b.members.length, b.T);
    tick(-1);
    for await (const { layer, weights: w } of layersAhead(runner.source)) {
      throwIfCancelled(opts.signal);
      const weights = layerWeightFeeds(spec, w);
      const compression = runner.source.compression?.(layer) ?? null;
      // thin-space tables depend on the window length: one set per length in the group
      const inputs = new Map<number, ReturnType<typeof compressionInputs>>();
      for (const b of group) {
        throwIfCancelled(opts.signal);
        if (!inputs.has(b.T)) inputs.set(b.T, compressionInputs(spec, compression, b.T));
        const { variant, feeds } = inputs.get(b.T)!;
        const out = await runner.layerVariant(
          variant,
          { ...weights, ...feeds },
          b.hidden as Float32Array,
          b.members.length,
          b.T,
          layer,
        );
        b.hidden = out.y.data as Float32Array;
        checkLayerOutput(runner, layer, b.hidden, D);
      }
      tick(layer);
    }
    for (const b of group) {
      throwIfCancelled(opts.signal);
      const B = b.members.length;
      const hidden = b.hidden as Float32Array;
      const { nll: batchNll, logits: batchLogits } = await batchHead(
        runner,
        hidden,
        b.ids,
        B,
        b.T,
        wantLogits === 'all',
      );
      if (wantLogits === 'last') {
        const last = new Float32Array(B * D);
        for (let k = 0; k < B; k++)
          last.set(hidden.subarray(((k + 1) * b.T - 1) * D, (k + 1) * b.T * D), k * D);
        const out = await runner.head(last, B, new Int32Array(B), true);
        b.members.forEach((m, k) => (logits![m] = (out.logits as Float32Array).slice(k * V, (k + 1) * V)));
      }
      b.members.forEach((m, k) => {
        nll[m] = batchNll.slice(k * b.T, (k + 1) * b.T - 1);
        if (batchLogits) logits![m] = batchLogits.slice(k * b.T * V, (k + 1) * b.T * V);
      });
      b.hidden = null;
    }
    tick(-1);
  }
  return logits ? { nll, logits } : { nll };
}
