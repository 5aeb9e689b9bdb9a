/**
 * mulberry32: a tiny seeded PRNG. Sampling must be reproducible from `--seed` alone (and identical across
 * platforms and Node versions), which Math.random cannot give. Not for anything security-related.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform integer in [0, n) from a [0, 1) generator. */
export function randomInt(next: () => number, n: number): number {
  return Math.floor(next() * n);
}
