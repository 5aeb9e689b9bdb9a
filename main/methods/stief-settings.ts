/**
 * StiefAttention's options, apart from its training code: the job settings name them (types.ts), and the
 * settings must not pull the optimiser and the gradient graphs in with them.
 */
export interface StiefSettings {
  /** Optimiser steps per phase (keys, then values). */
  steps: number;
  /** Adam learning rate on the manifold, decayed by a cosine schedule. */
  lr: number;
  /** Held-out evaluation every this many steps (early stopping and per-rank selection). */
  evalEvery: number;
  /** Stop a phase after this many evaluations without improvement at any rank. */
  patience: number;
  seed: number;
}

/**
 * Defaults measured on stories260K and synthetic layers: a learning rate of 0.1–0.3 on the manifold crosses
 * the barrier between EigenAttention's variance-ordered basis and output-relevant directions; smaller ones
 * stay at the start (selection then keeps EigenAttention's bases).
 */
export const STIEF_DEFAULTS: StiefSettings = { steps: 150, lr: 0.2, evalEvery: 10, patience: 5, seed: 0 };

/** What a job may set of the training, and how many calibration windows it trains on. */
export type StiefJobSettings = Partial<StiefSettings> & { trainWindows?: number };

/** Calibration windows trained on when the job does not say: enough for a stable gradient, cheap per step. */
export const DEFAULT_TRAIN_WINDOWS = 4;
