import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress } from '../../main/jobs/compress.ts';
import { writeSyntheticModel, type SyntheticRecipe } from '../../main/model/synthetic.ts';
import { METHOD_IDS, methodById } from '../../main/methods/index.ts';
import type { KeySpace } from '../../main/core/kv.ts';
import { tempDir } from '../helpers/paths.ts';
import { tinyGpt2, tinyLlama } from '../helpers/recipes.ts';
import { rewriteTensors } from '../helpers/checkpoint-edit.ts';

const tmp = tempDir();
const PLANTED = 4;
const d = 8;
const TEXT = () => path.join(tmp.dir, 'text.txt');

/**
 * Zeroes every key and value output dimension outside S = span{e_i, e_{i+d/2} : i < PLANTED/2} in every head.
 * S is a union of RoPE rotation planes, so keys stay in S before and after RoPE: a rank-PLANTED structure
 * that every method and key space can represent exactly, shared by all heads (EigenAttention's case too).
 */
async function plant(dir: string, family: 'llama' | 'gpt2'): Promise<void> {
  const inS = (i: number) => i % d < PLANTED / 2 || (i % d >= d / 2 && i % d < d / 2 + PLANTED / 2);
  await rewriteTensors(dir, (name, data, shape) => {
    if (family === 'llama' && /self_attn\.[kv]_proj\.weight$/.test(name)) {
      const D = shape[1];
      for (let row = 0; row < shape[0]; row++) if (!inS(row)) data.fill(0, row * D, (row + 1) * D);
    }
    if (family === 'gpt2' && /attn\.c_attn\.(weight|bias)$/.test(name)) {
      // Conv1D [D, 3D]: columns D…3D are k and v outputs.
      const cols = shape[shape.length - 1];
      const rows = data.length / cols;
      const D = cols / 3;
      for (let r = 0; r < rows; r++) for (let c = D; c < cols; c++) if (!inS(c - D)) data[r * cols + c] = 0;
    }
  });
}

// No biases on the llama model: a bias would put keys outside the planted subspace.
const recipes: Record<string, SyntheticRecipe> = {
  llama: tinyLlama(31, { qkvBias: false }),
  gpt2: tinyGpt2(32),
};

beforeAll(async () => {
  for (const [name, recipe] of Object.entries(recipes)) {
    await writeSyntheticModel(path.join(tmp.dir, name), recipe);
    await plant(path.join(tmp.dir, name), name as 'llama' | 'gpt2');
  }
  const sentence = 'The quick brown fox jumps over the lazy dog while the small cat sleeps in the warm sun. ';
  fs.writeFileSync(TEXT(), sentence.repeat(60));
});
afterAll(() => tmp.cleanup());

const cases: [string, string, KeySpace][] = [];
for (const id of METHOD_IDS) {
  for (const space of methodById(id).keySpaces({ block: { rope: {}, qkNorm: false } } as never))
    cases.push([id, 'llama', space]);
  cases.push([id, 'gpt2', 'folded']);
}

describe('planted low-rank key and value structure', () => {
  it.each(cases)(
    '%s on %s (%s) recovers it: error ≈ 0 at the planted rank, clearly not below it',
    async (method, which, keySpace) => {
      const run = (r: number) =>
        compress({
          modelDir: path.join(tmp.dir, which),
          calib: TEXT(),
          eval: TEXT(),
          method: method as never,
          ranks: { k: r, v: r },
          keySpace,
          window: 64,
          calibWindows: 6,
          evalWindows: 3,
        });
      const at = await run(PLANTED);
      for (const l of at.layers) expect(l.error).toBeLessThan(1e-4);
      expect(Math.abs(at.perplexity.compressed / at.perplexity.original - 1)).toBeLessThan(1e-4);
      const below = await run(PLANTED - 2);
      expect(Math.max(...below.layers.map((l) => l.error))).toBeGreaterThan(1e-2);
    },
  );
});
