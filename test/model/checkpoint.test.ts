import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Checkpoint, INDEX_FILE, SINGLE_FILE, writeCheckpoint } from '../../main/model/checkpoint.ts';
import { normal, mulberry32 } from '../../main/model/prng.ts';
import type { TensorToWrite } from '../../main/model/safetensors.ts';
import { tempDir } from '../helpers/paths.ts';
import { expectRankwiseError } from './fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir('rankwise-ckpt-');
});
afterAll(() => tmp.cleanup());

const rng = mulberry32(1);
const tensors: TensorToWrite[] = [
  { name: 'embed', dtype: 'F32', shape: [16, 8], data: normal(128, rng) }, // 512 B
  { name: 'layer.0.w', dtype: 'BF16', shape: [8, 8], data: normal(64, rng) }, // 128 B
  { name: 'layer.0.b', dtype: 'F16', shape: [8], data: normal(8, rng) }, // 16 B
  { name: 'layer.1.w', dtype: 'F32', shape: [8, 8], data: normal(64, rng) }, // 256 B
  { name: 'norm', dtype: 'F32', shape: [8], data: normal(8, rng) }, // 32 B
];
const TOTAL = 512 + 128 + 16 + 256 + 32;

describe('writeCheckpoint / Checkpoint.open', () => {
  it('sharded write + read equals the single-file checkpoint', async () => {
    const single = path.join(tmp.dir, 'single');
    const sharded = path.join(tmp.dir, 'sharded');
    expect(await writeCheckpoint(single, tensors)).toEqual([path.join(single, SINGLE_FILE)]);
    const written = await writeCheckpoint(sharded, tensors, { maxShardBytes: 400 });
    // greedy in order: [embed] 512 (over the limit, alone) | [layer.0.w, layer.0.b, layer.1.w] 400 | [norm] 32
    expect(written.map((p) => path.basename(p))).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      INDEX_FILE,
    ]);
    const index = JSON.parse(fs.readFileSync(path.join(sharded, INDEX_FILE), 'utf8'));
    expect(index.metadata.total_size).toBe(TOTAL);
    expect(Object.keys(index.weight_map)).toEqual([...tensors.map((t) => t.name)].sort());
    expect(index.weight_map['layer.1.w']).toBe('model-00002-of-00003.safetensors');

    const a = await Checkpoint.open(single);
    const b = await Checkpoint.open(sharded);
    expect(a.sharded).toBe(false);
    expect(b.sharded).toBe(true);
    expect(b.files).toHaveLength(3);
    expect(b.names()).toEqual(a.names());
    for (const name of a.names()) {
      expect(b.has(name)).toBe(true);
      const { file: _fa, begin: _ba, end: _ea, ...ia } = a.info(name);
      const { file: _fb, begin: _bb, end: _eb, ...ib } = b.info(name);
      expect(ib).toEqual(ia);
      expect([...(await b.readFloat32(name))]).toEqual([...(await a.readFloat32(name))]);
    }
    expect(b.info('norm').file).toBe(path.join(sharded, 'model-00003-of-00003.safetensors'));
    expect(b.metadata.format).toBe('pt');
    await expectRankwiseError(
      () => b.info('nope'),
      'bad-input',
      /no tensor "nope"/,
      path.join(sharded, INDEX_FILE),
    );
    await a.close();
    await b.close();
  });

  it('a tensor above the shard limit gets a shard of its own; rewriting removes stale weights', async () => {
    const dir = path.join(tmp.dir, 'rewrite');
    await writeCheckpoint(dir, tensors, { maxShardBytes: 100 });
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('model-'))).toHaveLength(5);
    await writeCheckpoint(dir, tensors);
    expect(fs.readdirSync(dir).sort()).toEqual([SINGLE_FILE]);
  });

  it('a single model.safetensors wins over an index', async () => {
    const dir = path.join(tmp.dir, 'both');
    await writeCheckpoint(dir, tensors, { maxShardBytes: 400 });
    await writeCheckpoint(path.join(tmp.dir, 'both-single'), tensors.slice(0, 1));
    fs.copyFileSync(path.join(tmp.dir, 'both-single', SINGLE_FILE), path.join(dir, SINGLE_FILE));
    const c = await Checkpoint.open(dir);
    expect(c.names()).toEqual(['embed']);
    await c.close();
  });
});

describe('Checkpoint.open errors', () => {
  let base: string;
  beforeAll(async () => {
    base = path.join(tmp.dir, 'base');
    await writeCheckpoint(base, tensors, { maxShardBytes: 400 });
  });

  /** A copy of the sharded checkpoint whose index is replaced by `index` (object or raw text). */
  function withIndex(name: string, index: unknown): { dir: string; indexPath: string } {
    const dir = path.join(tmp.dir, name);
    fs.cpSync(base, dir, { recursive: true });
    const indexPath = path.join(dir, INDEX_FILE);
    fs.writeFileSync(indexPath, typeof index === 'string' ? index : JSON.stringify(index));
    return { dir, indexPath };
  }

  it('no weights at all', async () => {
    const dir = path.join(tmp.dir, 'empty');
    fs.mkdirSync(dir);
    await expectRankwiseError(
      Checkpoint.open(dir),
      'bad-input',
      /no weights found: expected model\.safetensors/,
      dir,
    );
    fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'x');
    await expectRankwiseError(Checkpoint.open(dir), 'bad-input', /pickle checkpoints are never loaded/, dir);
  });

  it('index not JSON', async () => {
    const { dir, indexPath } = withIndex('idx-json', '{"weight_map": ');
    await expectRankwiseError(Checkpoint.open(dir), 'bad-input', /index is not valid JSON/, indexPath);
  });

  it('index without weight_map', async () => {
    const { dir, indexPath } = withIndex('idx-shape', { metadata: {} });
    await expectRankwiseError(Checkpoint.open(dir), 'bad-input', /no "weight_map" object/, indexPath);
  });

  it('index naming a shard that does not exist', async () => {
    const { dir, indexPath } = withIndex('idx-missing', {
      weight_map: { embed: 'model-00009-of-00009.safetensors' },
    });
    await expectRankwiseError(
      Checkpoint.open(dir),
      'bad-input',
      /shard "model-00009-of-00009\.safetensors".*does not exist/,
      indexPath,
    );
  });

  it('index mapping a tensor to a shard without it', async () => {
    const { dir, indexPath } = withIndex('idx-wrong', {
      weight_map: { embed: 'model-00002-of-00003.safetensors' },
    });
    await expectRankwiseError(
      Checkpoint.open(dir),
      'bad-input',
      /maps tensor "embed" to "model-00002-of-00003\.safetensors", which does not contain it/,
      indexPath,
    );
  });

  it('index pointing outside the folder', async () => {
    const { dir, indexPath } = withIndex('idx-escape', {
      weight_map: { embed: '../base/model-00001-of-00003.safetensors' },
    });
    await expectRankwiseError(Checkpoint.open(dir), 'bad-input', /not a plain file name/, indexPath);
  });

  it('index with a duplicated tensor', async () => {
    const { dir, indexPath } = withIndex(
      'idx-dup',
      '{"weight_map":{"embed":"model-00001-of-00003.safetensors","embed":"model-00002-of-00003.safetensors"}}',
    );
    await expectRankwiseError(Checkpoint.open(dir), 'bad-input', /key "embed" more than once/, indexPath);
  });

  it('a corrupt shard is reported with its own path', async () => {
    const { dir } = withIndex('idx-corrupt', fs.readFileSync(path.join(base, INDEX_FILE), 'utf8'));
    const shard = path.join(dir, 'model-00002-of-00003.safetensors');
    fs.truncateSync(shard, 4);
    await expectRankwiseError(Checkpoint.open(dir), 'bad-input', /truncated/, shard);
  });
});
