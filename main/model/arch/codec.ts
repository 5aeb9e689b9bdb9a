/**
 * Tensor codecs: how an architecture names and lays out its tensors, as data, and the one implementation
 * of everything that follows from it (expected names and shapes, header checks, loading, writing back).
 *
 * An adapter lists its modules — `self_attn.qkv_proj` holds q, k and v; `mlp.c_fc` is a Conv1D holding
 * `up` — and this file maps them both ways between the checkpoint and Rankwise's normalised fields
 * (LayerWeights, EmbeddingWeights; linears [out, in]). Fused modules are the fields' rows concatenated
 * in order (Phi-3's qkv_proj and gate_up_proj); a Conv1D module stores the transpose (GPT-2). Whether a
 * field exists, its shape and whether it has a bias come from the spec, so a compressed checkpoint's
 * narrowed projections and a config's biases need no adapter code.
 */
import { badInput, RankwiseError } from '../../core/errors.ts';
import type { Checkpoint } from '../checkpoint.ts';
import { attentionShape } from '../kv-layout.ts';
import type { EmbeddingWeights, LayerWeights, Linear, ModelSpec, Norm } from '../types.ts';
import { checkAll, checkLayerCount, checkLayerIndex, loadTensor, transpose } from './common.ts';
import type { ExpectedTensor, FloatTensor } from './common.ts';

export type LinearField = 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';
export type NormField = 'attnNorm' | 'mlpNorm' | 'qNorm' | 'kNorm' | 'postAttnNorm' | 'postMlpNorm';
export type LayerField = LinearField | NormField;
export type EmbeddingField = 'tokens' | 'positions' | 'finalNorm' | 'lmHead';

/** One module of the checkpoint: `{name}.weight` (and `{name}.bias`) holding `fields`, in this order. */
export interface Module<F extends string> {
  name: string;
  fields: readonly F[];
  /** Stored [in, out] (GPT-2's Conv1D) rather than nn.Linear's [out, in]. */
  conv1d?: boolean;
}

export interface ArchCodec {
  /**
   * The prefix every tensor name of this checkpoint carries (GPT-2: `transformer.` when saved from the LM
   * head model, '' from the bare model), found from the names it holds.
   */
  root(has: (name: string) => boolean): string;
  /** The prefix new checkpoints are written with. */
  writeRoot: string;
  /** Layer i's tensors are `{root}{layers}{i}.{module}`. */
  layers: string;
  /** Layer modules, relative to the layer prefix. */
  layerModules: readonly Module<LayerField>[];
  /** The attention module's prefix inside a layer (`self_attn.`), where compressed checkpoints keep bases. */
  attention: string;
  /** Modules outside the layers, relative to the root; `unrooted` ones (GPT-2's lm_head) ignore it. */
  embeddingModules: readonly (Module<EmbeddingField> & { unrooted?: boolean })[];
  /** The config field that counts layers, named when the checkpoint holds another number. */
  layerCountField: string;
}

/** A normalised array a tensor holds (part of): `q.weight`, `finalNorm.bias`, `tokens.weight`. */
export interface Slot {
  /** The layer, or null for embeddings, final norm and head. */
  layer: number | null;
  field: LayerField | EmbeddingField;
  kind: 'weight' | 'bias';
  /** Rows of this part ([out] of a linear, the length of a vector). */
  rows: number;
  /** Columns ([in]) of a matrix; absent for vectors. */
  cols?: number;
}

/** One checkpoint tensor: its name, stored shape and the normalised parts it concatenates. */
export interface TensorPlan {
  name: string;
  shape: number[];
  parts: Slot[];
  conv1d: boolean;
}

const LINEAR_FIELDS: readonly LinearField[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
const NORM_FIELDS: readonly NormField[] = [
  'attnNorm',
  'mlpNorm',
  'qNorm',
  'kNorm',
  'postAttnNorm',
  'postMlpNorm',
];
const EMBEDDING_FIELDS: readonly EmbeddingField[] = ['tokens', 'positions', 'finalNorm', 'lmHead'];
const isLinear = (f: string): f is LinearField => (LINEAR_FIELDS as readonly string[]).includes(f);

/** Shape and bias of a layer field in this spec, or null when the block has no such field. */
function layerField(
  spec: ModelSpec,
  i: number,
  f: LayerField,
): { rows: number; cols?: number; bias: boolean } | null {
  const b = spec.block;
  const D = spec.hiddenSize;
  const I = spec.intermediateSize;
  const s = attentionShape(spec.kvCompression?.[i], spec.headDim);
  const normBias = b.norm.kind === 'layer';
  switch (f) {
    case 'q':
      return { rows: spec.numHeads * s.qWidth, cols: D, bias: b.bias.qkv };
    case 'k':
      return { rows: spec.numKvHeads * s.kWidth, cols: D, bias: b.bias.qkv };
    case 'v':
      return { rows: spec.numKvHeads * s.vWidth, cols: D, bias: b.bias.qkv };
    case 'o':
      return { rows: D, cols: spec.numHeads * s.vWidth, bias: b.bias.o };
    case 'gate':
      return b.mlp.gated ? { rows: I, cols: D, bias: b.bias.mlp } : null;
    case 'up':
      return { rows: I, cols: D, bias: b.bias.mlp };
    case 'down':
      return { rows: D, cols: I, bias: b.bias.mlp };
    case 'attnNorm':
    case 'mlpNorm':
      return { rows: D, bias: normBias };
    case 'postAttnNorm':
    case 'postMlpNorm':
      return b.postNorms ? { rows: D, bias: normBias } : null;
    case 'qNorm':
    case 'kNorm':
      // per-head RMSNorm over the full head, whatever a compressed checkpoint narrows
      return b.qkNorm ? { rows: spec.headDim, bias: false } : null;
  }
}

function embeddingField(
  spec: ModelSpec,
  f: EmbeddingField,
): { rows: number; cols?: number; bias: boolean } | null {
  const D = spec.hiddenSize;
  switch (f) {
    case 'tokens':
      return { rows: spec.vocabSize, cols: D, bias: false };
    case 'positions':
      return spec.block.rope ? null : { rows: spec.maxPositions, cols: D, bias: false };
    case 'finalNorm':
      return { rows: D, bias: spec.block.norm.kind === 'layer' };
    case 'lmHead':
      return spec.tieWordEmbeddings ? null : { rows: spec.vocabSize, cols: D, bias: false };
  }
}

/** Plans of a list of modules: `.weight` always, `.bias` when the spec gives the fields biases. */
function plansOf<F extends LayerField | EmbeddingField>(
  modules: readonly (Module<F> & { unrooted?: boolean })[],
  prefix: (m: Module<F> & { unrooted?: boolean }) => string,
  layer: number | null,
  info: (f: F) => { rows: number; cols?: number; bias: boolean } | null,
): TensorPlan[] {
  const out: TensorPlan[] = [];
  for (const m of modules) {
    const infos = m.fields.map((f) => info(f));
    if (infos.every((x) => x === null)) continue; // the block has no such module (an ungated MLP's gate)
    if (infos.some((x) => x === null) || infos.some((x) => x!.bias !== infos[0]!.bias)) {
      throw new RankwiseError('internal', `module ${m.name} fuses fields the spec treats differently`);
    }
    const name = `${prefix(m)}${m.name}`;
    const parts = (kind: 'weight' | 'bias') =>
      m.fields.map((field, j): Slot => {
        const x = infos[j]!;
        return kind === 'weight'
          ? { layer, field, kind, rows: x.rows, cols: x.cols }
          : { layer, field, kind, rows: x.rows };
      });
    const rows = infos.reduce((a, x) => a + x!.rows, 0);
    const cols = infos[0]!.cols;
    const conv1d = m.conv1d === true;
    const shape = cols === undefined ? [rows] : conv1d ? [cols, rows] : [rows, cols];
    out.push({ name: `${name}.weight`, shape, parts: parts('weight'), conv1d });
    if (infos[0]!.bias)
      out.push({ name: `${name}.bias`, shape: [rows], parts: parts('bias'), conv1d: false });
  }
  return out;
}

/**
 * A recipe feature whose tensors the codec has no module for (q/k norms, post-norms, a gate, learned
 * positions) would load as absent and compute as if off: an adapter bug, caught when the spec is made.
 */
export function checkCoverage(
  codec: ArchCodec,
  spec: Omit<ModelSpec, 'dtype' | 'bosTokenId' | 'eosTokenId'>,
): void {
  const s = spec as ModelSpec;
  const layer = new Set(codec.layerModules.flatMap((m) => m.fields));
  const outer = new Set(codec.embeddingModules.flatMap((m) => m.fields));
  const missing = [
    ...[...LINEAR_FIELDS, ...NORM_FIELDS].filter((f) => layerField(s, 0, f) !== null && !layer.has(f)),
    ...EMBEDDING_FIELDS.filter((f) => embeddingField(s, f) !== null && !outer.has(f)),
  ];
  if (missing.length > 0) {
    throw new RankwiseError('internal', `the ${spec.modelType} codec stores no ${missing.join(', ')}`);
  }
}

export function layerPrefix(codec: ArchCodec, root: string, i: number): string {
  return `${root}${codec.layers}${i}.`;
}

/** Layer i's tensors, in module order (bias after its weight). */
export function layerPlans(codec: ArchCodec, spec: ModelSpec, i: number, root: string): TensorPlan[] {
  const p = layerPrefix(codec, root, i);
  return plansOf(
    codec.layerModules,
    () => p,
    i,
    (f) => layerField(spec, i, f),
  );
}

/** Tensors outside the layers (embeddings, final norm, untied head), in module order. */
export function embeddingPlans(codec: ArchCodec, spec: ModelSpec, root: string): TensorPlan[] {
  return plansOf(
    codec.embeddingModules,
    (m) => (m.unrooted ? '' : root),
    null,
    (f) => embeddingField(spec, f),
  );
}

/** The order the synthetic writer lays a whole model out in: embeddings, layers, final norm and head. */
export function modelPlans(codec: ArchCodec, spec: ModelSpec, root: string): TensorPlan[] {
  const outer = embeddingPlans(codec, spec, root);
  const first = (p: TensorPlan) => p.parts[0].field === 'tokens' || p.parts[0].field === 'positions';
  const layers: TensorPlan[] = [];
  for (let i = 0; i < spec.numLayers; i++) layers.push(...layerPlans(codec, spec, i, root));
  return [...outer.filter(first), ...layers, ...outer.filter((p) => !first(p))];
}

// ---------------------------------------------------------------------------------------------------
// Encoding (normalised → stored) and decoding (stored → normalised)

/** The stored tensor of a plan, from each part's normalised array. */
export function encodeTensor(plan: TensorPlan, get: (slot: Slot) => Float32Array): Float32Array {
  const arrays = plan.parts.map((s) => {
    const a = get(s);
    const n = s.rows * (s.cols ?? 1);
    if (a.length !== n) {
      throw new RankwiseError(
        'internal',
        `${s.field}.${s.kind} has ${a.length} values, "${plan.name}" needs ${n}`,
      );
    }
    return a;
  });
  const rows = plan.parts.reduce((a, s) => a + s.rows, 0);
  const out = new Float32Array(arrays.reduce((a, x) => a + x.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  // rows concatenated in [out, in]; a Conv1D stores the transpose of that stack
  const cols = plan.parts[0].cols;
  return plan.conv1d && cols !== undefined ? transpose(out, rows, cols) : out;
}

/** The normalised parts of a stored tensor, keyed `field.kind`. */
export function decodeTensor(plan: TensorPlan, data: Float32Array): Map<string, Float32Array> {
  const rows = plan.parts.reduce((a, s) => a + s.rows, 0);
  const cols = plan.parts[0].cols;
  const stacked = plan.conv1d && cols !== undefined ? transpose(data, cols, rows) : data;
  const out = new Map<string, Float32Array>();
  let at = 0;
  for (const s of plan.parts) {
    const n = s.rows * (s.cols ?? 1);
    // a single-part tensor keeps its own buffer; fused ones are copied so each field owns its array
    out.set(`${s.field}.${s.kind}`, plan.parts.length === 1 ? stacked : stacked.slice(at, at + n));
    at += n;
  }
  return out;
}

function slotOfLayer(w: LayerWeights, s: Slot): Float32Array {
  const part = w[s.field as LayerField];
  const a = part?.[s.kind];
  if (!a) throw new RankwiseError('internal', `layer ${s.layer} has no ${s.field}.${s.kind} to write`);
  if (s.kind === 'weight' && isLinear(s.field)) {
    const l = part as Linear;
    if (l.out !== s.rows || l.in !== s.cols) {
      throw new RankwiseError(
        'internal',
        `layer ${s.layer} ${s.field} is [${l.out}, ${l.in}], the checkpoint layout needs [${s.rows}, ${s.cols}]`,
      );
    }
  }
  return a;
}

function slotOfEmbeddings(e: EmbeddingWeights, s: Slot): Float32Array {
  let a: Float32Array | undefined;
  if (s.field === 'finalNorm') a = e.finalNorm[s.kind];
  else if (s.kind === 'weight') a = e[s.field as 'tokens' | 'positions' | 'lmHead'];
  if (!a) throw new RankwiseError('internal', `no ${s.field}.${s.kind} to write`);
  return a;
}

export function encodeLayer(plans: readonly TensorPlan[], w: LayerWeights): FloatTensor[] {
  return plans.map((p) => ({
    name: p.name,
    shape: p.shape,
    data: encodeTensor(p, (s) => slotOfLayer(w, s)),
  }));
}

export function encodeEmbeddings(plans: readonly TensorPlan[], e: EmbeddingWeights): FloatTensor[] {
  return plans.map((p) => ({
    name: p.name,
    shape: p.shape,
    data: encodeTensor(p, (s) => slotOfEmbeddings(e, s)),
  }));
}

async function loadSlots(ckpt: Checkpoint, plans: readonly TensorPlan[]): Promise<Map<string, Float32Array>> {
  const decoded = await Promise.all(
    plans.map(async (p) => decodeTensor(p, await loadTensor(ckpt, p.name, p.shape))),
  );
  return new Map(decoded.flatMap((m) => [...m]));
}

function dims(plans: readonly TensorPlan[]): Map<string, Slot> {
  return new Map(
    plans.flatMap((p) => p.parts.filter((s) => s.kind === 'weight').map((s) => [s.field, s] as const)),
  );
}

export async function loadLayer(
  codec: ArchCodec,
  ckpt: Checkpoint,
  spec: ModelSpec,
  i: number,
): Promise<LayerWeights> {
  checkLayerIndex(spec, i, ckpt.dir);
  const plans = layerPlans(
    codec,
    spec,
    i,
    codec.root((n) => ckpt.has(n)),
  );
  const slots = await loadSlots(ckpt, plans);
  const shapes = dims(plans);
  const linear = (f: LinearField): Linear | undefined => {
    const weight = slots.get(`${f}.weight`);
    if (!weight) return undefined;
    const s = shapes.get(f)!;
    const bias = slots.get(`${f}.bias`);
    return bias ? { weight, bias, out: s.rows, in: s.cols! } : { weight, out: s.rows, in: s.cols! };
  };
  const norm = (f: NormField): Norm | undefined => {
    const weight = slots.get(`${f}.weight`);
    if (!weight) return undefined;
    const bias = slots.get(`${f}.bias`);
    return bias ? { weight, bias } : { weight };
  };
  const need = <T>(x: T | undefined, f: string): T => {
    if (!x) throw new RankwiseError('internal', `the ${spec.modelType} layout has no ${f}`);
    return x;
  };
  const w: LayerWeights = {
    attnNorm: need(norm('attnNorm'), 'attnNorm'),
    q: need(linear('q'), 'q'),
    k: need(linear('k'), 'k'),
    v: need(linear('v'), 'v'),
    o: need(linear('o'), 'o'),
    mlpNorm: need(norm('mlpNorm'), 'mlpNorm'),
    up: need(linear('up'), 'up'),
    down: need(linear('down'), 'down'),
  };
  const gate = linear('gate');
  if (gate) w.gate = gate;
  for (const f of NORM_FIELDS) {
    if (f === 'attnNorm' || f === 'mlpNorm') continue;
    const n = norm(f);
    if (n) w[f] = n;
  }
  return w;
}

export async function loadEmbeddings(
  codec: ArchCodec,
  ckpt: Checkpoint,
  spec: ModelSpec,
): Promise<EmbeddingWeights> {
  const slots = await loadSlots(
    ckpt,
    embeddingPlans(
      codec,
      spec,
      codec.root((n) => ckpt.has(n)),
    ),
  );
  const tokens = slots.get('tokens.weight');
  const finalNorm = slots.get('finalNorm.weight');
  if (!tokens || !finalNorm)
    throw new RankwiseError('internal', `the ${spec.modelType} layout has no embeddings`);
  const bias = slots.get('finalNorm.bias');
  const lmHead = spec.tieWordEmbeddings ? tokens : slots.get('lmHead.weight');
  if (!lmHead) throw new RankwiseError('internal', `the ${spec.modelType} layout has no untied head`);
  const e: EmbeddingWeights = {
    tokens,
    finalNorm: bias ? { weight: finalNorm, bias } : { weight: finalNorm },
    lmHead,
  };
  const positions = slots.get('positions.weight');
  if (positions) e.positions = positions;
  return e;
}

// ---------------------------------------------------------------------------------------------------
// Header checks

/** Every tensor the spec requires with its stored shape, including a compressed checkpoint's bases. */
export function expectedTensors(codec: ArchCodec, ckpt: Checkpoint, spec: ModelSpec): ExpectedTensor[] {
  const root = codec.root((n) => ckpt.has(n));
  const t: ExpectedTensor[] = embeddingPlans(codec, spec, root).map((p) => ({
    name: p.name,
    shape: p.shape,
  }));
  for (let i = 0; i < spec.numLayers; i++) {
    t.push(...layerPlans(codec, spec, i, root).map((p) => ({ name: p.name, shape: p.shape })));
    const s = attentionShape(spec.kvCompression?.[i], spec.headDim);
    const basis = [spec.numKvHeads, spec.headDim, s.kCached];
    const att = `${layerPrefix(codec, root, i)}${codec.attention}`;
    if (s.kBasis) t.push({ name: `${att}k_basis`, shape: basis });
    if (s.qBasis) t.push({ name: `${att}q_basis`, shape: basis });
  }
  return t;
}

/** Why the config has no bias for a module's fields, in the words a user can act on. */
function noBiasReason(spec: ModelSpec, module: Module<LayerField>): string {
  const f = module.fields[0];
  if (f === 'q' || f === 'k' || f === 'v') return `the config gives ${spec.modelType} no q/k/v biases`;
  if (f === 'o') return `the config gives ${module.name} no bias`;
  if (f === 'gate' || f === 'up' || f === 'down') return 'the config gives the MLP no biases';
  return `${module.name} is an RMSNorm, which has no bias`;
}

/**
 * Header-only check of the whole checkpoint: the layer count, every required tensor and its shape, and no
 * parameter inside a layer that the layout does not use — a bias the config does not declare, or a
 * module of another architecture (Qwen3's q_norm under a qwen2 config) would otherwise be silently
 * dropped, giving wrong outputs. `isParameter` exempts stored buffers (masks, RoPE tables).
 */
export function checkCheckpoint(
  codec: ArchCodec,
  ckpt: Checkpoint,
  spec: ModelSpec,
  isParameter: (name: string) => boolean,
): void {
  const root = codec.root((n) => ckpt.has(n));
  const start = `${root}${codec.layers}`;
  const layerOf = (name: string): number | null => {
    if (!name.startsWith(start)) return null;
    const m = /^(\d+)\./.exec(name.slice(start.length));
    return m ? Number(m[1]) : null;
  };
  checkLayerCount(ckpt, spec, codec.layerCountField, layerOf, (i) => `${start}${i}`);
  const expected = expectedTensors(codec, ckpt, spec);
  checkAll(ckpt, expected);
  const known = new Set(expected.map((t) => t.name));
  // undeclared biases first, in module order, with the reason the config gives
  for (let i = 0; i < spec.numLayers; i++) {
    const p = layerPrefix(codec, root, i);
    for (const m of codec.layerModules) {
      const name = `${p}${m.name}.bias`;
      if (known.has(`${p}${m.name}.weight`) && !known.has(name) && ckpt.has(name)) {
        throw badInput(`checkpoint has tensor "${name}" but ${noBiasReason(spec, m)}`, ckpt.info(name).file);
      }
    }
  }
  for (const name of ckpt.names()) {
    if (layerOf(name) === null || known.has(name) || !isParameter(name)) continue;
    throw badInput(
      `checkpoint has tensor "${name}" but the ${spec.modelType} layout has no such tensor; the config ` +
        'does not describe these weights',
      ckpt.info(name).file,
    );
  }
}
