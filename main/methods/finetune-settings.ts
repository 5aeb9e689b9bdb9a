/**
 * The fine-tuning's options, apart from its training code (finetune.ts): the job settings and the CLI
 * name them, and must not pull the optimiser and the gradient graphs in with them.
 */
export interface FinetuneSettings {
  /** Optimiser steps at most (early stopping may end sooner). */
  steps: number;
  /**
   * Adam's step per entry relative to the factors' RMS entry (about 1/√d for a projector), decayed by a
   * cosine schedule over `steps`.
   */
  lr?: number;
  /** Held-out checks without improvement before stopping. */
  patience?: number;
  /** Steps between held-out checks. */
  checkEvery?: number;
}

/**
 * Measured on stories260K (KQ-SVD and K/V PCA at rank 4, every layer, 4 or 8 training windows of 512, 200
 * steps): relative learning rates of 0.03–0.1 all lower every layer's held-out loss, 0.1 the most; 0.3
 * makes every layer's held-out loss rise above the start (and early stopping keeps the start). At half
 * the cache after the end-to-end allocation, 300 steps at 0.1 took KQ-SVD from 9.888 to 8.958 where 200
 * at 0.05 reached 9.049. Five checks ten steps apart is StiefAttention's early stopping.
 */
export const FINETUNE_DEFAULTS: Required<Omit<FinetuneSettings, 'steps'>> = {
  lr: 0.1,
  patience: 5,
  checkEvery: 10,
};
