import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readModelSpec } from '../../main/model/config.ts';
import { modelInfo } from '../../main/model/info.ts';
import { openModel } from '../../main/model/model.ts';
import { writeSyntheticModel } from '../../main/model/synthetic.ts';
import type { SyntheticRecipe } from '../../main/model/synthetic.ts';
import { tempDir } from '../helpers/paths.ts';
import { editConfig, expectRankwiseError, rewriteCheckpoint } from './fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
let n = 0;
beforeAll(() => {
  tmp = tempDir('rankwise-model-');
});
afterAll(() => tmp.cleanup());

const RECIPE: SyntheticRecipe = {
  modelType: 'llama',
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 64,
  vocabSize: 300,
  maxPositions: 64,
  dtype: 'F32',
  tie: true,
  seed: 1,
};

async function model(recipe: Partial<SyntheticRecipe> = {}): Promise<string> {
  const dir = path.join(tmp.dir, `m${n++}`);
  await writeSyntheticModel(dir, { ...RECIPE, ...recipe });
  return dir;
}

describe('openModel errors', () => {
  it('missing folder', async () => {
    const dir = path.join(tmp.dir, 'does-not-exist');
    await expectRankwiseError(openModel(dir), 'bad-input', /model folder does not exist/, dir);
  });

  it('a file instead of a folder', async () => {
    const f = path.join(tmp.dir, 'a-file');
    fs.writeFileSync(f, 'x');
    await expectRankwiseError(openModel(f), 'bad-input', /expected a model folder/, f);
  });

  it('folder without config.json', async () => {
    const dir = path.join(tmp.dir, 'empty');
    fs.mkdirSync(dir);
    await expectRankwiseError(openModel(dir), 'bad-input', /no config\.json/, dir);
  });

  it('folder without weights', async () => {
    const dir = await model();
    fs.rmSync(path.join(dir, 'model.safetensors'));
    await expectRankwiseError(openModel(dir), 'bad-input', /no weights found/, dir);
  });

  it('missing tensor is named', async () => {
    const dir = await model();
    await rewriteCheckpoint(dir, (ts) => ts.filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight'));
    await expectRankwiseError(
      openModel(dir),
      'bad-input',
      /missing tensor "model\.layers\.1\.mlp\.up_proj\.weight"/,
      path.join(dir, 'model.safetensors'),
    );
  });

  it('untied config without lm_head.weight', async () => {
    const dir = await model();
    editConfig(dir, (c) => (c.tie_word_embeddings = false));
    await expectRankwiseError(
      openModel(dir),
      'bad-input',
      /missing tensor "lm_head\.weight"/,
      path.join(dir, 'model.safetensors'),
    );
  });

  it('wrong shape names tensor, expected and found shape', async () => {
    const dir = await model();
    await rewriteCheckpoint(dir, (ts) =>
      ts.map((t) =>
        t.name === 'model.layers.0.self_attn.k_proj.weight'
          ? { ...t, shape: [32, 16] } // same byte count, wrong shape ([16, 32] expected)
          : t,
      ),
    );
    await expectRankwiseError(
      openModel(dir),
      'bad-input',
      /tensor "model\.layers\.0\.self_attn\.k_proj\.weight" has shape \[32, 16\], expected \[16, 32\]/,
      path.join(dir, 'model.safetensors'),
    );
  });

  it('a vocab_size that disagrees with the embedding', async () => {
    const dir = await model();
    editConfig(dir, (c) => (c.vocab_size = 301));
    await expectRankwiseError(
      openModel(dir),
      'bad-input',
      /"model\.embed_tokens\.weight" has shape \[300, 32\], expected \[301, 32\]/,
    );
  });

  it('a bias the config does not declare', async () => {
    const dir = await model({ qkvBias: true });
    editConfig(dir, (c) => (c.attention_bias = false));
    await expectRankwiseError(
      openModel(dir),
      'bad-input',
      /has tensor "model\.layers\.0\.self_attn\.q_proj\.bias" but the config gives llama no q\/k\/v biases/,
    );
  });

  it('layers of an unsupported dtype', async () => {
    const dir = await model();
    await rewriteCheckpoint(dir, (ts) =>
      ts.map((t) => (t.name === 'model.layers.0.self_attn.q_proj.weight' ? { ...t, dtype: 'I32' } : t)),
    );
    await expectRankwiseError(openModel(dir), 'unsupported-model', /stored as I32/);
  });

  it('layer index out of range', async () => {
    const m = await openModel(await model());
    await expectRankwiseError(m.loadLayer(2), 'bad-input', /layer 2 out of range/);
    await m.close();
  });
});

describe('dtype: the tensors win over the config', () => {
  it('config claims bfloat16, tensors are F16', async () => {
    const dir = await model({ dtype: 'F16' });
    editConfig(dir, (c) => (c.torch_dtype = 'bfloat16'));
    expect((await readModelSpec(dir)).dtype).toBe('F16');
    const m = await openModel(dir);
    expect(m.spec.dtype).toBe('F16');
    expect(modelInfo(m).kvBytesPerToken).toBe(2 * 2 * 2 * 8 * 2);
    await m.close();
  });
});

describe('llama biases load', () => {
  it('attention_bias gives q/k/v/o biases of the right size', async () => {
    const m = await openModel(await model({ qkvBias: true }));
    const L = await m.loadLayer(1);
    expect([L.q.bias!.length, L.k.bias!.length, L.v.bias!.length, L.o.bias!.length]).toEqual([
      32, 16, 16, 32,
    ]);
    expect(L.up.bias).toBeUndefined();
    await m.close();
  });
});
