/**
 * The attention layout of a Rankwise-compressed checkpoint (ARCHITECTURE.md §7): per layer, the cached
 * key and value widths and the key space, read from config.json's `kv_compression` block. One table of
 * shapes serves the writer, the reader's shape checks and the ONNX decoder.
 */
import { badInput, RankwiseError } from '../core/errors.ts';
import type { KeySpace } from '../core/kv.ts';
import type { KvLayerLayout } from '../contract/model.ts';

export const KV_COMPRESSION_KEY = 'kv_compression';
export const KV_COMPRESSION_FORMAT = 'rankwise';
export const KV_COMPRESSION_VERSION = 1;

/** One layer of the block (main/contract/model.ts: the model card carries it). */
export type { KvLayerLayout };

/** What the attention projections of layer i look like on disk (per-head widths and the bases). */
export interface AttentionShape {
  /** Per-head width of q_proj's output: the key rank when keys are folded, else d. */
  qWidth: number;
  /** Per-head width of k_proj's output: the cached latent (pre-RoPE, folded) or d (post-RoPE). */
  kWidth: number;
  /** Per-head width of v_proj's output and of o_proj's input blocks. */
  vWidth: number;
  /** [H_kv, d, r_k] reconstructs pre-RoPE keys (B) or projects RoPE'd keys (A, post-RoPE). */
  kBasis: boolean;
  /** [H_kv, d, r_k] projects RoPE'd queries (B, post-RoPE only). */
  qBasis: boolean;
  /** Key width in the cache per KV head, and whether keys are compressed at all. */
  kCached: number;
  keysCompressed: boolean;
}

export function attentionShape(layout: KvLayerLayout | undefined, headDim: number): AttentionShape {
  const d = headDim;
  if (!layout) {
    return {
      qWidth: d,
      kWidth: d,
      vWidth: d,
      kBasis: false,
      qBasis: false,
      kCached: d,
      keysCompressed: false,
    };
  }
  const r = layout.kRank;
  const compressed = r < d;
  const space = layout.keySpace;
  // folded and thin-space keys live in W_K·A and W_Q·B: both projections narrow to r
  const foldsQueries = space === 'folded' || space === 'thin-rope';
  return {
    qWidth: compressed && foldsQueries ? r : d,
    kWidth: compressed && space !== 'post-rope' ? r : d,
    vWidth: layout.vRank,
    kBasis: compressed && !foldsQueries,
    qBasis: compressed && space === 'post-rope',
    kCached: r,
    keysCompressed: compressed,
  };
}

const KEY_SPACES: readonly KeySpace[] = ['pre-rope', 'post-rope', 'folded', 'thin-rope'];

/**
 * Validates a config's `kv_compression` block against the model's shape. Anything unexpected is a
 * bad-input error naming config.json: a wrong block would load weights with the wrong meaning.
 */
export function parseKvCompression(
  raw: unknown,
  shape: { numLayers: number; headDim: number; hasRope: boolean },
  file: string,
): KvLayerLayout[] {
  const fail = (what: string) => badInput(`"${KV_COMPRESSION_KEY}" ${what}`, file);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail('must be an object');
  const block = raw as Record<string, unknown>;
  if (block.format !== KV_COMPRESSION_FORMAT) {
    throw fail(`has format ${JSON.stringify(block.format)}; only "${KV_COMPRESSION_FORMAT}" is read`);
  }
  if (block.version !== KV_COMPRESSION_VERSION) {
    throw fail(
      `has version ${JSON.stringify(block.version)}; this Rankwise reads version ${KV_COMPRESSION_VERSION}`,
    );
  }
  const layers = block.layers;
  if (!Array.isArray(layers) || layers.length !== shape.numLayers) {
    throw fail(`must list one entry per layer (${shape.numLayers}) in "layers"`);
  }
  const d = shape.headDim;
  return layers.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null) throw fail(`layer ${i} must be an object`);
    const e = entry as Record<string, unknown>;
    const rank = (key: string) => {
      const v = e[key];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > d) {
        throw fail(
          `layer ${i}: "${key}" must be an integer from 1 to the head dimension ${d}, found ${JSON.stringify(v)}`,
        );
      }
      return v;
    };
    const kRank = rank('k_rank');
    const vRank = rank('v_rank');
    const keySpace = e.key_space as KeySpace;
    if (!KEY_SPACES.includes(keySpace)) {
      throw fail(
        `layer ${i}: "key_space" must be one of ${KEY_SPACES.join(', ')}, found ${JSON.stringify(e.key_space)}`,
      );
    }
    if ((keySpace === 'folded') === shape.hasRope) {
      throw fail(
        `layer ${i}: key space ${keySpace} does not fit a model ${shape.hasRope ? 'with' : 'without'} RoPE`,
      );
    }
    if (keySpace !== 'thin-rope' || kRank === d) return { kRank, vRank, keySpace };
    const problem = ropePlanesProblem(e.rope_planes, kRank, d);
    if (problem) throw fail(`layer ${i}: "rope_planes" ${problem}`);
    return { kRank, vRank, keySpace, ropePlanes: e.rope_planes as number[] };
  });
}

/** Cache bytes per token of a layout: Σ over layers of H_kv · (r_k + r_v) elements. */
export function kvElementsPerToken(
  layout: readonly KvLayerLayout[] | undefined,
  spec: { numLayers: number; numKvHeads: number; headDim: number },
): number {
  if (!layout) return 2 * spec.numLayers * spec.numKvHeads * spec.headDim;
  return layout.reduce((acc, l) => acc + spec.numKvHeads * (l.kRank + l.vRank), 0);
}

/**
 * What is wrong with the RoPE planes of rank-r thin-space keys (runtime/thin-rope.ts), or null: there
 * must be ⌊r/2⌋ distinct planes of a head of d.
 */
export function ropePlanesProblem(planes: unknown, r: number, d: number): string | null {
  const h = Math.floor(r / 2);
  const valid =
    Array.isArray(planes) &&
    planes.length === h &&
    planes.every((p) => Number.isInteger(p) && p >= 0 && p < d / 2) &&
    new Set(planes).size === h;
  if (valid) return null;
  return (
    `must list ${h} distinct integers from 0 to ${d / 2 - 1} for thin-rope keys of rank ${r}, ` +
    `found ${JSON.stringify(planes)}`
  );
}

/** `planes` as a fresh array, after checking them (ropePlanesProblem); a bad list is an internal fault. */
export function checkRopePlanes(planes: readonly number[] | undefined, r: number, d: number): number[] {
  const problem = ropePlanesProblem(planes, r, d);
  if (problem) throw new RankwiseError('internal', `RoPE planes ${problem}`);
  return [...planes!];
}
