import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { Checkpoint } from '../../main/model/checkpoint.ts';
import { readModelSpec } from '../../main/model/config.ts';
import { modelInfo } from '../../main/model/info.ts';
import { openModel } from '../../main/model/model.ts';
import { SafetensorsFile } from '../../main/model/safetensors.ts';
import { STORIES_DIR } from '../helpers/paths.ts';
import { referenceForward } from '../reference/forward.ts';

// The real, trained stories260K model (../shared/testdata/README.md §1).

describe('stories260K-llama', () => {
  it('parses into the documented spec', async () => {
    const spec = await readModelSpec(STORIES_DIR);
    expect(spec).toEqual({
      modelType: 'llama',
      hiddenSize: 64,
      numLayers: 5,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 8,
      intermediateSize: 172,
      vocabSize: 512,
      maxPositions: 512,
      tieWordEmbeddings: true,
      block: {
        norm: { kind: 'rms', eps: 1e-5, offset: 0 },
        postNorms: false,
        qkNorm: false,
        mlp: { gated: true, act: 'silu' },
        bias: { qkv: false, o: false, mlp: false },
        rope: { theta: 10000, invFreq: [1, 0.1, 0.01, 0.001], attentionFactor: 1, scaling: 'default' },
        queryScale: 1 / Math.sqrt(8),
        attnSoftcap: null,
        finalSoftcap: null,
        embedScale: 1,
        slidingWindow: [null, null, null, null, null],
      },
      dtype: 'F32',
      bosTokenId: 1,
      eosTokenId: 2,
    });
  });

  it('has 47 F32 tensors, the README parameter count and 1280 KV bytes per token', async () => {
    const m = await openModel(STORIES_DIR);
    expect(m.checkpoint.names()).toHaveLength(47);
    expect(m.checkpoint.has('lm_head.weight')).toBe(false);
    for (const n of m.checkpoint.names()) expect(m.checkpoint.info(n).dtype).toBe('F32');
    const info = modelInfo(m);
    expect(info).toMatchObject({
      modelType: 'llama',
      layers: 5,
      heads: 8,
      kvHeads: 4,
      headDim: 8,
      hiddenSize: 64,
      vocabSize: 512,
      rope: 10000,
      dtype: 'F32',
      parameters: 260_032,
      kvBytesPerToken: 1280,
    });
    expect(info.kvBytesPerSequence).toEqual([
      { tokens: 4096, bytes: 4096 * 1280 },
      { tokens: 32768, bytes: 32768 * 1280 },
      { tokens: 131072, bytes: 131072 * 1280 },
    ]);
    await m.close();
  });

  it('file metadata and layout are as the README says', async () => {
    const f = await SafetensorsFile.open(path.join(STORIES_DIR, 'model.safetensors'));
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.dataStart % 8).toBe(0);
    await f.close();
    const c = await Checkpoint.open(STORIES_DIR);
    expect(c.info('model.layers.0.self_attn.k_proj.weight')).toMatchObject({ dtype: 'F32', shape: [32, 64] });
    await c.close();
  });

  it('loads normalised weights, and a naive forward reproduces the reference logits', async () => {
    const m = await openModel(STORIES_DIR);
    const emb = await m.loadEmbeddings();
    expect(emb.lmHead).toBe(emb.tokens); // tied: the same array
    expect(emb.positions).toBeUndefined();
    const layers = [];
    for (let i = 0; i < m.spec.numLayers; i++) layers.push(await m.loadLayer(i));
    const L0 = layers[0];
    expect([L0.q.out, L0.q.in, L0.k.out, L0.o.out, L0.o.in, L0.gate!.out, L0.down.in]).toEqual([
      64, 64, 32, 64, 64, 172, 172,
    ]);
    expect(L0.q.bias).toBeUndefined();

    const ref = JSON.parse(fs.readFileSync(path.join(STORIES_DIR, 'reference_outputs.json'), 'utf8'));
    const ids: number[] = ref.input_ids;
    const expected: number[] = ref.last_position_logits;
    const { logits } = referenceForward(m.spec, emb, layers, ids);
    const last = logits[logits.length - 1];
    let maxErr = 0;
    for (let i = 0; i < expected.length; i++) maxErr = Math.max(maxErr, Math.abs(last[i] - expected[i]));
    expect(maxErr).toBeLessThan(1e-3);
    const argmax = logits.map((l) => l.indexOf(Math.max(...l)));
    expect(argmax).toEqual(ref.argmax_per_position);
    await m.close();
  });
});
