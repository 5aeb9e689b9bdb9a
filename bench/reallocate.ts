/**
 * How long re-allocation takes: the Review step's target slider and re-fit run the allocator in the page
 * on the profiles it holds, the engine's `reallocate` answers the same from a finished job's files. Prints
 * milliseconds per call for profiles of the stories260K shape and of the 1B and 7B shapes (grid of 64
 * points per layer), then the engine API's `reallocate` on a real stories260K job, split into its parts.
 * Run: `npm run bench:reallocate`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createEngineApi } from '../main/api/engine-api.ts';
import { rankGrid } from '../main/core/memory.ts';
import { reallocateProfiles } from '../main/core/allocate/index.ts';
import type { CacheShape, LayerProfile } from '../main/core/allocate/index.ts';

const here = path.dirname(new URL(import.meta.url).pathname);
const SHARED = path.resolve(here, '..', '..', 'shared', 'testdata');

/** A profile whose error falls off with rank as measured ones do (convex in each of k and v). */
function profiles(layers: number, d: number): LayerProfile[] {
  const grid = rankGrid(d);
  return Array.from({ length: layers }, (_, layer) => ({
    layer,
    points: grid.flatMap((k) =>
      grid.map((v) => ({
        kRank: k,
        vRank: v,
        error: k === d && v === d ? 0 : (0.3 + 0.01 * layer) * ((1 - k / d) ** 2 + 1.5 * (1 - v / d) ** 2),
      })),
    ),
  }));
}

function timed(fn: () => unknown, runs: number): number {
  fn();
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) fn();
  return (performance.now() - t0) / runs;
}

console.log('| profiles | slider move (kvFraction) | re-fit around one hand-set layer |');
console.log('|---|---|---|');
for (const [name, layers, kvHeads, d] of [
  ['stories260K (5 layers, d 8)', 5, 4, 8],
  ['1B shape (16 layers, d 64)', 16, 8, 64],
  ['7B shape (32 layers, d 128)', 32, 8, 128],
] as const) {
  const p = profiles(layers, d);
  const shape: CacheShape = { kvHeads, headDim: d, bytesPerElement: 2 };
  let f = 0.2;
  const move = timed(() => reallocateProfiles(p, shape, { kvFraction: (f = f >= 0.8 ? 0.2 : f + 0.01) }), 50);
  const refit = timed(
    () =>
      reallocateProfiles(p, shape, {
        kvFraction: 0.5,
        overrides: [{ layer: 0, kRank: d, vRank: d }],
        refit: true,
      }),
    50,
  );
  console.log(`| ${name} | ${move.toFixed(2)} ms | ${refit.toFixed(2)} ms |`);
}

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rankwise-realloc-'));
const api = createEngineApi({ dir: home });
try {
  const text = path.join(SHARED, 'text', 'tinystories_valid_excerpt.txt');
  const job = await api.startJob({
    model: path.join(SHARED, 'stories260K-llama'),
    calib: { path: text },
    eval: { path: text },
    method: 'kqsvd',
    kvFraction: 0.5,
    window: 128,
    calibWindows: 8,
    evalWindows: 2,
  });
  await new Promise<void>((resolve) => {
    const off = api.subscribe(job.id, (e) => {
      if (e.type === 'state' && ['done', 'failed', 'cancelled'].includes(e.state)) {
        off();
        resolve();
      }
    });
  });
  const runs = 10;
  let engine = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await api.reallocate({ jobId: job.id, kvFraction: 0.3 + 0.02 * i });
    engine += performance.now() - t0;
  }
  const t0 = performance.now();
  await api.inspect(path.join(SHARED, 'stories260K-llama'));
  const inspect = performance.now() - t0;
  const t1 = performance.now();
  await api.getResult(job.id);
  const result = performance.now() - t1;
  console.log(
    `\nengine reallocate on a stories260K job: ${(engine / runs).toFixed(1)} ms per call ` +
      `(of which opening the model ≈ ${inspect.toFixed(1)} ms, reading the job's result ≈ ${result.toFixed(1)} ms)`,
  );
} finally {
  await api.close();
  fs.rmSync(home, { recursive: true, force: true });
}
