/**
 * Plain Adam (Kingma & Ba, 2015) on one flat vector of Euclidean parameters, for the fine-tuning of free
 * factor pairs (finetune.ts). StiefelAdam (stiefel.ts) is the same update on the manifold; here nothing
 * constrains the parameters, so no projection or retraction is needed.
 */
import type { AdamOptions } from './stiefel.ts';

export class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;

  constructor(
    readonly size: number,
    private readonly opts: Omit<AdamOptions, 'lr'> = {},
  ) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  /**
   * One step of `theta` (in place) along the gradient `g` with learning rate `lr`, times `scale[i]` per
   * entry when given: Adam's step is about `lr` per entry whatever the gradient's size, so parameters
   * of different magnitudes need their own step size.
   */
  step(theta: Float64Array, g: Float64Array, lr: number, scale?: Float64Array): void {
    const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = this.opts;
    this.t += 1;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    for (let i = 0; i < this.size; i++) {
      this.m[i] = beta1 * this.m[i] + (1 - beta1) * g[i];
      this.v[i] = beta2 * this.v[i] + (1 - beta2) * g[i] * g[i];
      const stepSize = scale ? lr * scale[i] : lr;
      theta[i] -= (stepSize * (this.m[i] / c1)) / (Math.sqrt(this.v[i] / c2) + eps);
    }
  }
}
