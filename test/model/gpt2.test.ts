import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decodeTensor, encodeTensor, layerPlans } from '../../main/model/arch/codec.ts';
import { gpt2Adapter } from '../../main/model/arch/gpt2.ts';
import { modelInfo } from '../../main/model/info.ts';
import { openModel } from '../../main/model/model.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import type { TensorToWrite } from '../../main/model/safetensors.ts';
import { tempDir } from '../helpers/paths.ts';
import { expectRankwiseError, rewriteCheckpoint } from './fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir('rankwise-gpt2-');
});
afterAll(() => tmp.cleanup());

const D = 8;
const I = 16;
const P = 32;
const V = 300;

/** A row-major [rows, cols] tensor whose entry (r, c) is f(r, c). */
function known(rows: number, cols: number, f: (r: number, c: number) => number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = f(r, c);
  return out;
}

async function tinyGpt2(name: string): Promise<string> {
  const dir = path.join(tmp.dir, name);
  await writeSyntheticModel(dir, {
    modelType: 'gpt2',
    hiddenSize: D,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 2,
    intermediateSize: I,
    vocabSize: V,
    maxPositions: P,
    dtype: 'F32',
    tie: true,
    seed: 9,
  });
  return dir;
}

describe('GPT-2 Conv1D layout', () => {
  it('splits c_attn [D, 3D] into q, k, v and transposes every Conv1D to [out, in]', async () => {
    const dir = await tinyGpt2('known');
    // Bare names (as GPT2Model saves them), known values in layer 0, and the causal-mask buffer that
    // older checkpoints carry.
    const W = known(D, 3 * D, (i, j) => i * 100 + j);
    const Pw = known(D, D, (i, j) => 1000 + i * 10 + j);
    const F = known(D, I, (i, j) => 2000 + i * 100 + j);
    const G = known(I, D, (i, j) => 5000 + i * 100 + j);
    const replace: Record<string, Float32Array> = {
      'h.0.attn.c_attn.weight': W,
      'h.0.attn.c_attn.bias': Float32Array.from({ length: 3 * D }, (_, j) => j),
      'h.0.attn.c_proj.weight': Pw,
      'h.0.mlp.c_fc.weight': F,
      'h.0.mlp.c_proj.weight': G,
    };
    await rewriteCheckpoint(dir, (ts) => {
      const out: TensorToWrite[] = ts.map((t) => {
        const name = t.name.replace(/^transformer\./, '');
        return replace[name] ? { ...t, name, data: replace[name] } : { ...t, name };
      });
      out.push({ name: 'h.0.attn.bias', dtype: 'F32', shape: [1, 1, P, P], data: new Float32Array(P * P) });
      return out;
    });

    const m = await openModel(dir);
    const L = await m.loadLayer(0);
    for (let o = 0; o < D; o++) {
      for (let i = 0; i < D; i++) {
        expect(L.q.weight[o * D + i]).toBe(i * 100 + o);
        expect(L.k.weight[o * D + i]).toBe(i * 100 + D + o);
        expect(L.v.weight[o * D + i]).toBe(i * 100 + 2 * D + o);
        expect(L.o.weight[o * D + i]).toBe(1000 + i * 10 + o);
      }
      expect([L.q.bias![o], L.k.bias![o], L.v.bias![o]]).toEqual([o, D + o, 2 * D + o]);
    }
    expect([L.up.out, L.up.in, L.down.out, L.down.in]).toEqual([I, D, D, I]);
    for (let o = 0; o < I; o++)
      for (let i = 0; i < D; i++) expect(L.up.weight[o * D + i]).toBe(2000 + i * 100 + o);
    for (let o = 0; o < D; o++)
      for (let i = 0; i < I; i++) expect(L.down.weight[o * I + i]).toBe(5000 + i * 100 + o);
    expect(L.gate).toBeUndefined();
    expect(L.attnNorm.bias).toBeDefined();

    // the mask buffer is not a parameter
    const perLayer = 2 * D + (3 * D * D + 3 * D) + (D * D + D) + 2 * D + (D * I + I) + (I * D + D);
    expect(modelInfo(m).parameters).toBe(V * D + P * D + 2 * D + 2 * perLayer);
    expect(modelInfo(m).rope).toBeNull();
    const emb = await m.loadEmbeddings();
    expect(emb.positions!.length).toBe(P * D);
    expect(emb.lmHead).toBe(emb.tokens);
    await m.close();
  });

  it('loads the same weights with or without the transformer. prefix', async () => {
    const dir = await tinyGpt2('prefix');
    const a = await openModel(dir);
    const la = await a.loadLayer(1);
    const ea = await a.loadEmbeddings();
    await a.close();
    await rewriteCheckpoint(dir, (ts) =>
      ts.map((t) => ({ ...t, name: t.name.replace(/^transformer\./, '') })),
    );
    const b = await openModel(dir);
    const lb = await b.loadLayer(1);
    const eb = await b.loadEmbeddings();
    await b.close();
    expect(lb).toEqual(la);
    expect(eb.positions).toEqual(ea.positions);
  });

  it('the codec splits c_attn into q, k, v and fuses them back', async () => {
    const m = await openModel(await tinyGpt2('fuse'));
    const plan = layerPlans(gpt2Adapter.codec, m.spec, 0, 'transformer.').find((p) =>
      p.name.endsWith('attn.c_attn.weight'),
    )!;
    await m.close();
    expect(plan.shape).toEqual([D, 3 * D]);
    const q = known(D, D, (r, c) => r + c / 10);
    const k = known(D, D, (r, c) => -r - c / 10);
    const v = known(D, D, (r, c) => r * c);
    const fields: Record<string, Float32Array> = { q, k, v };
    const stored = encodeTensor(plan, (s) => fields[s.field]);
    // Conv1D: row i of the stored matrix is input feature i, columns q | k | v
    for (let i = 0; i < D; i++) {
      for (let o = 0; o < D; o++) {
        expect(stored[i * 3 * D + o]).toBe(q[o * D + i]);
        expect(stored[i * 3 * D + D + o]).toBe(k[o * D + i]);
        expect(stored[i * 3 * D + 2 * D + o]).toBe(v[o * D + i]);
      }
    }
    const back = decodeTensor(plan, stored);
    expect([back.get('q.weight'), back.get('k.weight'), back.get('v.weight')]).toEqual([q, k, v]);
  });

  it('a c_attn with the wrong shape is named', async () => {
    const dir = await tinyGpt2('badshape');
    await rewriteCheckpoint(dir, (ts) =>
      ts.map((t) => (t.name === 'transformer.h.1.attn.c_attn.weight' ? { ...t, shape: [3 * D, D] } : t)),
    );
    await expectRankwiseError(
      openModel(dir),
      'bad-input',
      /"transformer\.h\.1\.attn\.c_attn\.weight" has shape \[24, 8\], expected \[8, 24\]/,
    );
  });
});
