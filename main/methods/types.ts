import type { KeySpace, LayerCompression, LayerGrams, MethodId } from '../core/kv.ts';
import type { LayerWeights, ModelSpec } from '../model/types.ts';
import type { HeldoutBatch } from '../runtime/capture.ts';
import type { HeldoutErrors } from '../runtime/layer-error.ts';
import type { ModelRunner } from '../runtime/runner.ts';
import type { StiefJobSettings } from './stief-settings.ts';

/** What a method sees of a layer: its weights and the calibration statistics of its original inputs. */
export interface LayerCapture {
  layer: number;
  weights: LayerWeights;
  grams: LayerGrams;
}

/**
 * A method's fit of one layer: nested bases, so any per-head rank pair is a truncation and a whole
 * error-rank profile costs one fit.
 */
export interface LayerFit {
  keySpace: KeySpace;
  /** The compression at per-head ranks (kRank, vRank); a rank equal to d leaves that side uncompressed. */
  at(kRank: number, vRank: number): LayerCompression;
  /**
   * Set when `at` picks, per rank pair, between fits whose keys depend on kRank only and values on vRank
   * only (StiefAttention: learned or EigenAttention bases). Plain fits are such a fit themselves. The job
   * cache stores fits in this form.
   */
  mixture?: { fits: LayerFit[]; pick(kRank: number, vRank: number): number };
}

/**
 * The part of a compress job's settings the method hooks read: the rank target and the methods' own
 * options. The job's settings are a superset, passed as they are.
 */
export interface MethodSettings {
  /** Fixed per-head ranks; absent when the ranks are chosen per layer. */
  ranks?: { k: number; v: number };
  /** Error budget: bound on the weighted mean relative layer-output error. */
  budget?: number;
  /** Memory target: fraction of the original KV cache bytes. */
  kvFraction?: number;
  /** A method's own per-layer rank choice, or the knapsack over every layer's profile. */
  allocator?: 'knapsack' | 'sweep';
  stief?: StiefJobSettings;
  /** Positions of each window a layer's loss and errors compare (runtime/layer-sweep.ts; default there). */
  profileTokens?: number;
}

/** A per-head rank pair and the held-out layer error measured at it (the allocator's ProfilePoint). */
export interface RankPoint {
  kRank: number;
  vRank: number;
  error: number;
}

/** What a method's own per-layer rank choice gets: the layer's chosen fit and its held-out meter. */
export interface ChooseContext {
  capture: LayerCapture;
  spec: ModelSpec;
  fit: LayerFit;
  meter: HeldoutErrors;
}

/** Which ranks a job measures and keeps for every layer, and who picks each layer's ranks. */
export interface RankPlan {
  /** The (kRank, vRank) pairs each layer's profile measures, in this order. */
  profile: { kRank: number; vRank: number }[];
  /** Per-head ranks a layer's fit must serve: the job cache stores factors at these, training trains them. */
  ranks: number[];
  /**
   * 'allocator': the allocator, after the layer loop, over every layer's profile. 'fixed': each layer keeps
   * its only profiled pair. A function: the method, inside the layer loop (EigenAttention's sweep); the
   * job cache then keeps its answer with the layer.
   */
  choose: 'allocator' | 'fixed' | ((layer: ChooseContext) => Promise<RankPoint>);
}

/** One optimiser step of a method that trains, for progress and ETA. */
export interface TrainStep {
  layer: number;
  /** What is being trained ('keys', 'values'): the progress stage is `train <phase>`. */
  phase: string;
  step: number;
  /** Steps planned for this phase. */
  steps: number;
  loss: number;
}

/** Everything one layer's fit in one key space may use. */
export interface TrainContext {
  capture: LayerCapture;
  spec: ModelSpec;
  keySpace: KeySpace;
  settings: MethodSettings;
  plan: RankPlan;
  runner: ModelRunner;
  /** The kept calibration windows at this layer: `cost().training.windows` of them, none without training. */
  trainBatches: HeldoutBatch[];
  /** The held-out windows at this layer: what the profile is measured on. */
  meter: HeldoutErrors;
  /** The calibration text the statistics come from: a fit that fails on them names it. */
  calib: string;
  signal?: AbortSignal;
  onStep?: (p: TrainStep) => void;
}

export interface TrainedLayer {
  fit: LayerFit;
  /** Held-out errors training already measured: the profile takes these instead of measuring again. */
  knownError?(kRank: number, vRank: number): number | undefined;
  /** Optimiser steps (every phase) and wall time, for a method that trains. */
  training?: { steps: number; seconds: number };
}

/** What a job's pre-flight estimate and its progress need to know of a method's work per layer. */
export interface MethodCost {
  /** Null for a fit from the statistics alone, whose cost is negligible beside the forward passes. */
  training: {
    /** Calibration windows each layer trains on. */
    windows: number;
    /** Optimiser steps planned per layer and key space, every phase (early stopping only shortens it). */
    steps: number;
    /** Forward passes of the layer over one training window that a step costs, in the estimate's model. */
    forwardsPerStep: number;
  } | null;
}

export interface CompressionMethod {
  id: MethodId;
  /** One-paragraph plain explanation, for the CLI help and the wizard. */
  summary: string;
  /** Key spaces this method can fit on this model; the first is its default. */
  keySpaces(spec: ModelSpec): KeySpace[];
  /**
   * The fit from a layer's statistics alone: a closed-form method's whole fit, a trained method's
   * starting point.
   */
  fit(capture: LayerCapture, spec: ModelSpec, keySpace: KeySpace): LayerFit;
  /** A compress job's fit of one layer in one key space, training included. */
  train(ctx: TrainContext): Promise<TrainedLayer>;
  /** The ranks a job profiles and keeps, and who chooses each layer's (`settings` as the job has them). */
  rankPlan(spec: ModelSpec, settings: MethodSettings): RankPlan;
  cost(settings: MethodSettings): MethodCost;
  /**
   * The settings of this method that change a cached layer, beyond those the job cache always keys on (the
   * model, the texts and every fitting setting): their JSON goes into the cache key.
   */
  cacheKey(settings: MethodSettings): Record<string, unknown>;
}
