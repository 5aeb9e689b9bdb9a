/**
 * StiefAttention's options, apart from its training code: the job settings name them (types.ts), and the
 * settings must not pull the optimiser and the gradient graphs in with them.
 */

import type { StiefKeySharing, StiefSchedule } from '../contract/api.ts';

export interface StiefSettings {
  /** Optimiser steps per phase (one joint phase, or keys then values under 'sequential'). */
  steps: number;
  /** Adam learning rate on the manifold, decayed by a cosine schedule. */
  lr: number;
  /** Held-out evaluation every this many steps (early stopping and per-rank selection). */
  evalEvery: number;
  /** Stop a phase after this many evaluations without improvement at any rank. */
  patience: number;
  seed: number;
  /**
   * How the key bases are shared: the paper's one basis per layer for every KV head, one per KV head, or
   * both trained and, at every grid pair, the one that measures lower on the held-out windows.
   */
  keys: StiefKeySharing;
  /**
   * Where training starts: 'best', the closed form (EigenAttention, K/V PCA, KQ-SVD orthonormalised, thin
   * keys) whose bases measure lowest over the grid, per side; 'eigen', EigenAttention's bases.
   */
  start: 'best' | 'eigen';
  /**
   * 'sequential': keys with values uncompressed, then values with keys uncompressed (the paper reviewers'
   * order); 'alternate': the same two phases, each side trained against the other compressed at its
   * current bases and a rank drawn from the grid; 'joint': every step compresses both sides at drawn ranks
   * and moves both bases.
   */
  schedule: StiefSchedule;
  /**
   * Positions of each training window a step compares, drawn afresh (stratified) every step; a number at
   * least the window's length compares every position, every step. A wide model's profile positions
   * (runtime/layer-sweep.ts) cap it.
   */
  trainRows: number;
}

/**
 * Defaults measured on stories260K (bench/stief-steps.ts and the same set-up per layer): a learning rate of
 * 0.1–0.3 on the manifold crosses the barrier between a variance-ordered basis and output-relevant
 * directions. A gradient on 128 of 512 positions, drawn afresh each step, costs about a sixth of one on all
 * of them and left layer 0's profile within 0.1 %; held-out checks every 10, 25 or 75 steps gave profiles
 * within 0.5 % of each other, and a check costs as much as 7 profile points, hence every 75. Keys then
 * values, each against the other uncompressed, profiled 2–4 % lower than 'alternate' or 'joint' on layers
 * 0 and 1, hence 'sequential'. Per-head keys start from bases that measure about half of EigenAttention's
 * shared basis there, and 'auto' lowered the mean profile of every layer.
 */
export const STIEF_DEFAULTS: StiefSettings = {
  steps: 150,
  lr: 0.2,
  evalEvery: 75,
  patience: 2,
  seed: 0,
  keys: 'auto',
  start: 'best',
  schedule: 'sequential',
  trainRows: 128,
};

/**
 * The settings that reproduce StiefAttention before per-head keys, closed-form starts, joint training and
 * sampled positions (bench/stief-steps.ts measures against them).
 */
export const STIEF_PAPER_ORDER: Partial<StiefSettings> = {
  evalEvery: 10,
  patience: 5,
  keys: 'shared',
  start: 'eigen',
  schedule: 'sequential',
  trainRows: Number.MAX_SAFE_INTEGER,
};

/** What a job may set of the training, and how many calibration windows it trains on. */
export type StiefJobSettings = Partial<StiefSettings> & { trainWindows?: number };

/** Calibration windows trained on when the job does not say: enough for a stable gradient, cheap per step. */
export const DEFAULT_TRAIN_WINDOWS = 4;
