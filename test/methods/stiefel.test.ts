import { describe, expect, it } from 'vitest';
import { eigh, matmul, qr } from '../../native-kernels/index.ts';
import { cosineLr, orthonormalityError, projectTangent, StiefelAdam } from '../../main/methods/stiefel.ts';
import { transpose } from '../../main/methods/linalg.ts';
import { mulberry32 } from '../../main/model/prng.ts';

const random = (n: number, seed: number) => {
  const rng = mulberry32(seed);
  return Float64Array.from({ length: n }, () => rng() - 0.5);
};

describe('Riemannian Adam on the Stiefel manifold', () => {
  const n = 10;
  const k = 3;

  it('projects gradients onto the tangent space: Pᵀξ is skew-symmetric', () => {
    const p = qr(random(n * k, 1), n, k).q;
    const xi = projectTangent(p, random(n * k, 2), n, k);
    const ptx = matmul(transpose(p, n, k), k, n, xi, k);
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++) expect(ptx[i * k + j] + ptx[j * k + i]).toBeCloseTo(0, 12);
  });

  it('keeps PᵀP = I after every step and finds the top eigenspace of a Rayleigh quotient', () => {
    // minimise −tr(PᵀAP): the optimum spans the top-k eigenvectors of A.
    const b = random(n * n, 3);
    const a = matmul(b, n, n, transpose(b, n, n), n);
    const opt = new StiefelAdam(qr(random(n * k, 4), n, k).q, n, k, { lr: 0.05 });
    const steps = 400;
    for (let t = 0; t < steps; t++) {
      const g = matmul(a, n, n, opt.p, k).map((v) => -2 * v);
      opt.step(g, cosineLr(0.05, t, steps));
      expect(orthonormalityError(opt.p, n, k)).toBeLessThan(1e-5);
    }
    const { values } = eigh(a, n);
    const captured = matmul(transpose(opt.p, n, k), k, n, matmul(a, n, n, opt.p, k), k);
    let tr = 0;
    for (let i = 0; i < k; i++) tr += captured[i * k + i];
    const best = values[0] + values[1] + values[2];
    expect(tr / best).toBeGreaterThan(0.999);
  });

  it('cosine schedule runs from lr to 0', () => {
    expect(cosineLr(0.1, 0, 100)).toBeCloseTo(0.1, 12);
    expect(cosineLr(0.1, 50, 100)).toBeCloseTo(0.05, 12);
    expect(cosineLr(0.1, 100, 100)).toBeCloseTo(0, 12);
  });
});
