/**
 * RoPE from config.json, resolved once into what the graphs need: the inverse frequency of every rotated
 * pair after scaling, and the factor on cos and sin. Both config forms are read: `rope_theta` +
 * `rope_scaling` (transformers < 5) and `rope_parameters` with `rope_type` (transformers ≥ 4.56 / 5).
 * The formulas are those of transformers' modeling_rope_utils; a scaling type not listed here is refused
 * by name rather than run as plain RoPE.
 */
import { badInput, unsupportedModel } from '../../core/errors.ts';
import type { RopeRecipe } from '../types.ts';
import type { ConfigFields } from './common.ts';

/** Scaling types implemented below. */
export const ROPE_TYPES = ['default', 'linear', 'dynamic', 'yarn', 'llama3'] as const;

/** θ^(−2i/d) for each of the d/2 rotated pairs: plain RoPE's inverse frequencies. */
export function defaultInvFreq(theta: number, d: number): number[] {
  return Array.from({ length: d / 2 }, (_, i) => Math.pow(theta, (-2 * i) / d));
}

/** One rope dictionary (rope_scaling or rope_parameters) with errors that name it and the key. */
class RopeDict {
  constructor(
    readonly raw: Record<string, unknown>,
    /** `rope_scaling` or `rope_parameters`, for messages. */
    readonly key: string,
    readonly file: string,
  ) {}

  has(k: string): boolean {
    return this.raw[k] !== undefined && this.raw[k] !== null;
  }

  /** A positive finite number; required unless a fallback is given. */
  num(k: string, fallback?: number): number {
    if (!this.has(k)) {
      if (fallback !== undefined) return fallback;
      throw badInput(`${this.key}.${k} is required for rope type "${this.type}"`, this.file);
    }
    const v = this.raw[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw badInput(`${this.key}.${k} must be a positive number, found ${JSON.stringify(v)}`, this.file);
    }
    return v;
  }

  get type(): string {
    // "type" is the name before transformers 4.45 renamed it to rope_type
    const t = this.raw.rope_type ?? this.raw.type ?? 'default';
    if (typeof t !== 'string') {
      throw badInput(`${this.key}.rope_type must be a string, found ${JSON.stringify(t)}`, this.file);
    }
    return t;
  }
}

function asDict(v: unknown, key: string, file: string): RopeDict | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw badInput(`config field "${key}" must be an object, found ${JSON.stringify(v)}`, file);
  }
  return new RopeDict(v as Record<string, unknown>, key, file);
}

/**
 * The model's RoPE, resolved for heads of `headDim`. `maxPositions` is config max_position_embeddings;
 * `thetaDefault` the family's rope_theta when the config gives none.
 */
export function resolveRope(
  cfg: ConfigFields,
  headDim: number,
  maxPositions: number,
  thetaDefault = 10000,
): RopeRecipe {
  const file = cfg.file;
  const params = asDict(cfg.get('rope_parameters'), 'rope_parameters', file);
  const scaling = asDict(cfg.get('rope_scaling'), 'rope_scaling', file);
  if (params && ['full_attention', 'sliding_attention'].some((k) => k in params.raw)) {
    throw unsupportedModel(
      'rope_parameters per layer type (full_attention / sliding_attention) are not supported',
      file,
    );
  }
  // transformers 5 folds rope_scaling into rope_parameters; a config carrying both must not disagree
  if (params && scaling && params.type !== scaling.type) {
    throw unsupportedModel(
      `rope_parameters (type "${params.type}") and rope_scaling (type "${scaling.type}") disagree`,
      file,
    );
  }
  const dict = params ?? scaling;

  const partial = params?.has('partial_rotary_factor')
    ? params.raw.partial_rotary_factor
    : cfg.get('partial_rotary_factor');
  if (partial !== undefined && partial !== 1) {
    throw unsupportedModel(
      `partial_rotary_factor ${JSON.stringify(partial)} is not supported (RoPE on the whole head only)`,
      file,
    );
  }

  let theta: number;
  if (params?.has('rope_theta')) {
    const t = params.raw.rope_theta;
    if (typeof t !== 'number' || !(t > 0) || !Number.isFinite(t)) {
      throw badInput(`rope_parameters.rope_theta must be a positive number, found ${String(t)}`, file);
    }
    theta = t;
  } else {
    theta = cfg.positiveNum('rope_theta', thetaDefault);
  }
  const d = headDim;
  const base = defaultInvFreq(theta, d);
  const type = dict ? dict.type : 'default';

  switch (type) {
    case 'default': {
      if (dict && dict.has('factor') && dict.raw.factor !== 1) {
        throw unsupportedModel(
          `${dict.key} of type "default" with factor ${JSON.stringify(dict.raw.factor)} is not supported`,
          file,
        );
      }
      return { theta, invFreq: base, attentionFactor: 1, scaling: 'default' };
    }
    case 'linear': {
      const factor = dict!.num('factor');
      return { theta, invFreq: base.map((f) => f / factor), attentionFactor: 1, scaling: 'linear' };
    }
    case 'dynamic': {
      dict!.num('factor');
      // Dynamic NTK rescales θ only once a sequence is longer than max_position_embeddings; up to that
      // length its frequencies are exactly the default ones. Rankwise never runs past maxPositions (the
      // same max_position_embeddings: windows, evaluation and generation are all capped by it), so the
      // default table is exact wherever it is used.
      return { theta, invFreq: base, attentionFactor: 1, scaling: 'dynamic' };
    }
    case 'yarn':
      return yarn(dict!, theta, d, maxPositions);
    case 'llama3':
      return llama3(dict!, theta, base);
    default:
      throw unsupportedModel(
        `${dict!.key} type "${type}" is not supported (supported: ${ROPE_TYPES.join(', ')})`,
        file,
      );
  }
}

/**
 * Llama 3.1: wavelengths longer than original/low_freq_factor are interpolated by `factor`, shorter than
 * original/high_freq_factor kept, and the band between blended smoothly.
 */
function llama3(dict: RopeDict, theta: number, base: number[]): RopeRecipe {
  const factor = dict.num('factor');
  const low = dict.num('low_freq_factor');
  const high = dict.num('high_freq_factor');
  const original = dict.num('original_max_position_embeddings');
  if (!(high > low)) {
    throw badInput(
      `${dict.key}.high_freq_factor (${high}) must be greater than low_freq_factor (${low})`,
      dict.file,
    );
  }
  const lowWavelen = original / low;
  const highWavelen = original / high;
  const invFreq = base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / factor;
    const smooth = (original / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
  return { theta, invFreq, attentionFactor: 1, scaling: 'llama3' };
}

/**
 * YaRN with the fixed (non-dynamic) table: pairs that rotate more than beta_fast times over the original
 * context keep their frequency, fewer than beta_slow times are interpolated by `factor`, a linear ramp in
 * between; cos and sin scale by the attention factor (0.1·ln(factor) + 1 unless given). `factor` is the
 * config's even when original_max_position_embeddings is given (transformers since PR #40320; earlier
 * versions replaced it by max_position_embeddings / original_max_position_embeddings).
 */
function yarn(dict: RopeDict, theta: number, d: number, maxPositions: number): RopeRecipe {
  const factor = dict.num('factor');
  const original = dict.num('original_max_position_embeddings', maxPositions);
  const mscale = dict.has('mscale') ? dict.num('mscale') : 0;
  const mscaleAllDim = dict.has('mscale_all_dim') ? dict.num('mscale_all_dim') : 0;
  const getMscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  let attentionFactor: number;
  if (dict.has('attention_factor')) attentionFactor = dict.num('attention_factor');
  else if (mscale && mscaleAllDim)
    attentionFactor = getMscale(factor, mscale) / getMscale(factor, mscaleAllDim);
  else attentionFactor = getMscale(factor);
  const betaFast = dict.has('beta_fast') ? dict.num('beta_fast') : 32;
  const betaSlow = dict.has('beta_slow') ? dict.num('beta_slow') : 1;
  const truncate = dict.raw.truncate ?? true;
  if (typeof truncate !== 'boolean') {
    throw badInput(
      `${dict.key}.truncate must be true or false, found ${JSON.stringify(truncate)}`,
      dict.file,
    );
  }

  // the pair index whose wavelength fits `rotations` times into the original context
  const correctionDim = (rotations: number) =>
    (d * Math.log(original / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  let lo = correctionDim(betaFast);
  let hi = correctionDim(betaSlow);
  if (truncate) {
    lo = Math.floor(lo);
    hi = Math.ceil(hi);
  }
  lo = Math.max(lo, 0);
  hi = Math.min(hi, d - 1);
  if (lo === hi) hi += 0.001; // as transformers: no division by zero in the ramp

  const invFreq = Array.from({ length: d / 2 }, (_, i) => {
    const extrapolation = Math.pow(theta, (-2 * i) / d);
    const interpolation = extrapolation / factor;
    const ramp = Math.min(1, Math.max(0, (i - lo) / (hi - lo)));
    const keep = 1 - ramp; // weight of the unscaled frequency
    return interpolation * (1 - keep) + extrapolation * keep;
  });
  return { theta, invFreq, attentionFactor, scaling: 'yarn' };
}
