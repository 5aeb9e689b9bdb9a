/**
 * Seeded randomness for synthetic models and window sampling. Reproducibility across machines and Node versions matters
 * (the demo model must be the same everywhere), so nothing here touches Math.random: mulberry32 for
 * uniforms, Box–Muller for normals, and one independent stream per tensor name so the order tensors are
 * generated in never changes their values.
 */

/** mulberry32: a 32-bit-state generator, uniform in [0, 1). Plenty for initialising weights. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform integer in [0, n) from a [0, 1) generator. */
export function randomInt(next: () => number, n: number): number {
  return Math.floor(next() * n);
}

/** FNV-1a over UTF-16 code units: a cheap, stable string hash to derive per-tensor seeds. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The uniform stream for one named tensor of a model seeded with `seed`. */
export function streamFor(seed: number, name: string): () => number {
  // fold the seed's high bits in too, so seeds beyond 2^32 still differ
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return mulberry32((lo ^ fnv1a(name) ^ Math.imul(hi, 0x9e3779b1)) >>> 0);
}

/** Fills `out` with mean + std · N(0, 1) samples (Box–Muller, both outputs of each pair used). */
export function fillNormal(out: Float32Array, rng: () => number, std = 1, mean = 0): Float32Array {
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - rng(); // (0, 1]: keeps log finite
    const r = Math.sqrt(-2 * Math.log(u1));
    const phi = 2 * Math.PI * rng();
    out[i] = mean + std * r * Math.cos(phi);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(phi);
  }
  return out;
}

export function normal(n: number, rng: () => number, std = 1, mean = 0): Float32Array {
  return fillNormal(new Float32Array(n), rng, std, mean);
}

/**
 * `cols` orthonormal vectors of length `rows` (cols ≤ rows), as a column-major Float64Array: vector j is
 * [j·rows, (j+1)·rows). Gaussian vectors orthonormalised by modified Gram–Schmidt, applied twice so the
 * result is orthonormal to machine precision.
 */
export function randomOrthonormal(rows: number, cols: number, rng: () => number): Float64Array {
  if (cols > rows) throw new RangeError(`cannot fit ${cols} orthonormal vectors in ${rows} dimensions`);
  const m = Float64Array.from(normal(rows * cols, rng));
  for (let j = 0; j < cols; j++) {
    const vj = m.subarray(j * rows, (j + 1) * rows);
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        const vk = m.subarray(k * rows, (k + 1) * rows);
        let dot = 0;
        for (let i = 0; i < rows; i++) dot += vj[i] * vk[i];
        for (let i = 0; i < rows; i++) vj[i] -= dot * vk[i];
      }
    }
    let norm = 0;
    for (let i = 0; i < rows; i++) norm += vj[i] * vj[i];
    norm = Math.sqrt(norm);
    for (let i = 0; i < rows; i++) vj[i] /= norm;
  }
  return m;
}
