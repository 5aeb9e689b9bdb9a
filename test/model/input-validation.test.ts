/**
 * Audit #13: config numbers are validated against sane limits and against the tensors present, weights
 * are scanned for non-finite values as they load, the tokenizer must fit the model's vocabulary, and every
 * file-system error on an input is a bad-input error that names the path and the reason.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { readModelSpec } from '../../main/model/config.ts';
import { openModel } from '../../main/model/model.ts';
import { loadTokenizer } from '../../main/model/tokenizer.ts';
import { INDEX_FILE } from '../../main/model/checkpoint.ts';
import { rewriteTensors } from '../helpers/checkpoint-edit.ts';
import { STORIES_DIR, tempDir } from '../helpers/paths.ts';
import { editConfig, expectRankwiseError } from './fixtures.ts';

const tmp = tempDir('rankwise-validate-');
afterAll(() => tmp.cleanup());
afterEach(() => vi.restoreAllMocks());

let n = 0;
/** A writable copy of stories260K. */
function stories(): string {
  const dir = path.join(tmp.dir, `s${n++}`);
  fs.cpSync(STORIES_DIR, dir, { recursive: true });
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o755);
  return dir;
}

/** A folder holding only config.json: readModelSpec then parses the config alone. */
function configOnly(config: Record<string, unknown>): { dir: string; file: string } {
  const dir = path.join(tmp.dir, `c${n++}`);
  fs.mkdirSync(dir);
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config));
  return { dir, file };
}

const STORIES_CONFIG = JSON.parse(fs.readFileSync(path.join(STORIES_DIR, 'config.json'), 'utf8')) as Record<
  string,
  unknown
>;
const GPT2 = { model_type: 'gpt2', n_embd: 64, n_layer: 2, n_head: 4, n_positions: 128, vocab_size: 300 };

function fsError(code: string, file: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: simulated, open '${file}'`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

describe('config numbers within limits', () => {
  it.each([
    ['num_hidden_layers', 9007199254740991],
    ['num_hidden_layers', 1_000_000],
    ['hidden_size', 2 ** 40],
    ['intermediate_size', 2 ** 40],
    ['vocab_size', 2 ** 40],
    ['num_attention_heads', 2 ** 40],
    ['max_position_embeddings', 2 ** 50],
  ])('refuses %s = %d, naming the field and the limit', async (field, value) => {
    const { dir, file } = configOnly({ ...STORIES_CONFIG, [field]: value });
    await expectRankwiseError(readModelSpec(dir), 'bad-input', new RegExp(`"${field}".*at most`), file);
  });

  it.each([
    ['rms_norm_eps', -1],
    ['rms_norm_eps', 0],
    ['rms_norm_eps', 1e9],
    ['rope_theta', -10000],
    ['rope_theta', 0],
  ])('refuses %s = %d', async (field, value) => {
    const { dir, file } = configOnly({ ...STORIES_CONFIG, [field]: value });
    await expectRankwiseError(readModelSpec(dir), 'bad-input', new RegExp(`"?${field}"?`), file);
  });

  it('refuses a GPT-2 layer_norm_epsilon that is not positive', async () => {
    const { dir, file } = configOnly({ ...GPT2, layer_norm_epsilon: -1e-5 });
    await expectRankwiseError(readModelSpec(dir), 'bad-input', /layer_norm_epsilon/, file);
  });

  it('refuses a rope_theta inside rope_parameters that is not positive', async () => {
    const { dir, file } = configOnly({
      ...STORIES_CONFIG,
      rope_parameters: { rope_type: 'default', rope_theta: -5 },
    });
    await expectRankwiseError(readModelSpec(dir), 'bad-input', /rope_theta/, file);
  });

  it('still reads the real config unchanged', async () => {
    const spec = await readModelSpec(STORIES_DIR);
    expect(spec).toMatchObject({
      numLayers: 5,
      hiddenSize: 64,
      block: { norm: { eps: 1e-5 }, rope: { theta: 10000 } },
    });
  });
});

describe('the layer count must match the checkpoint', () => {
  it('refuses num_hidden_layers smaller than the layers present (they would be silently skipped)', async () => {
    const dir = stories();
    editConfig(dir, (c) => (c.num_hidden_layers = 4));
    await expectRankwiseError(
      openModel(dir),
      'bad-input',
      /num_hidden_layers is 4 but the checkpoint holds 5 layers/,
      path.join(dir, 'config.json'),
    );
  });

  it('refuses num_hidden_layers larger than the layers present, naming config.json', async () => {
    const dir = stories();
    editConfig(dir, (c) => (c.num_hidden_layers = 7));
    await expectRankwiseError(
      openModel(dir),
      'bad-input',
      /num_hidden_layers is 7 but the checkpoint holds 5 layers/,
      path.join(dir, 'config.json'),
    );
  });

  it('refuses a huge num_hidden_layers at once', async () => {
    const dir = stories();
    editConfig(dir, (c) => (c.num_hidden_layers = 4096));
    const t0 = performance.now();
    await expectRankwiseError(
      openModel(dir),
      'bad-input',
      /num_hidden_layers/,
      path.join(dir, 'config.json'),
    );
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('non-finite weights are refused as they load, naming the tensor and the file', () => {
  it('a NaN in a layer weight', async () => {
    const dir = stories();
    await rewriteTensors(dir, (name, data) => {
      if (name === 'model.layers.2.mlp.down_proj.weight') data[17] = NaN;
    });
    const m = await openModel(dir);
    try {
      await m.loadLayer(1);
      await expectRankwiseError(
        m.loadLayer(2),
        'bad-input',
        /tensor "model\.layers\.2\.mlp\.down_proj\.weight" holds NaN \(element 17\)/,
        path.join(dir, 'model.safetensors'),
      );
    } finally {
      await m.close();
    }
  });

  it('an infinity in the embeddings', async () => {
    const dir = stories();
    await rewriteTensors(dir, (name, data) => {
      if (name === 'model.embed_tokens.weight') data[100] = -Infinity;
    });
    const m = await openModel(dir);
    try {
      await expectRankwiseError(
        m.loadEmbeddings(),
        'bad-input',
        /tensor "model\.embed_tokens\.weight" holds -Infinity \(element 100\)/,
        path.join(dir, 'model.safetensors'),
      );
    } finally {
      await m.close();
    }
  });
});

describe('the tokenizer must fit the model', () => {
  it('refuses token ids at or above vocab_size, naming tokenizer.json and config.json', async () => {
    const dir = stories();
    const file = path.join(dir, 'tokenizer.json');
    const tok = JSON.parse(fs.readFileSync(file, 'utf8'));
    tok.added_tokens.push({
      id: 600,
      content: '<extra>',
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
    fs.writeFileSync(file, JSON.stringify(tok));
    const e = await expectRankwiseError(loadTokenizer(dir), 'bad-input', /id 600.*vocab_size 512/, file);
    expect(e.message).toContain(path.join(dir, 'config.json'));
  });

  it('accepts the real pair', async () => {
    expect((await loadTokenizer(STORIES_DIR)).vocabSize).toBe(512);
  });
});

describe('file-system errors name the path and the reason', () => {
  it('a symbolic link loop as the model folder', async () => {
    const loop = path.join(tmp.dir, `loop${n++}`);
    fs.symlinkSync(loop, loop);
    await expectRankwiseError(openModel(loop), 'bad-input', /symbolic link loop/, loop);
  });

  it('a symbolic link loop as config.json', async () => {
    const dir = stories();
    const file = path.join(dir, 'config.json');
    fs.rmSync(file);
    fs.symlinkSync(file, file);
    await expectRankwiseError(openModel(dir), 'bad-input', /symbolic link loop/, file);
  });

  it('a symbolic link loop as model.safetensors', async () => {
    const dir = stories();
    const file = path.join(dir, 'model.safetensors');
    fs.rmSync(file);
    fs.symlinkSync(file, file);
    await expectRankwiseError(openModel(dir), 'bad-input', /symbolic link loop/, file);
  });

  it('a symbolic link loop as tokenizer.json', async () => {
    const dir = stories();
    const file = path.join(dir, 'tokenizer.json');
    fs.rmSync(file);
    fs.symlinkSync(file, file);
    await expectRankwiseError(loadTokenizer(dir), 'bad-input', /symbolic link loop/, file);
  });

  it('a model folder that cannot be searched (EACCES on config.json) says permission denied', async () => {
    const dir = stories();
    const file = path.join(dir, 'config.json');
    const stat = fs.promises.stat;
    vi.spyOn(fs.promises, 'stat').mockImplementation(((p: fs.PathLike, o?: fs.StatOptions) =>
      String(p) === file ? Promise.reject(fsError('EACCES', file)) : stat(p, o)) as typeof fs.promises.stat);
    await expectRankwiseError(openModel(dir), 'bad-input', /cannot be read \(permission denied\)/, file);
  });

  it('an unreadable config.json says permission denied', async () => {
    const dir = stories();
    const file = path.join(dir, 'config.json');
    const readFile = fs.promises.readFile;
    vi.spyOn(fs.promises, 'readFile').mockImplementation(((p: fs.PathLike, o?: unknown) =>
      String(p) === file
        ? Promise.reject(fsError('EACCES', file))
        : readFile(p, o as BufferEncoding)) as typeof fs.promises.readFile);
    await expectRankwiseError(openModel(dir), 'bad-input', /cannot be read \(permission denied\)/, file);
  });

  it('an unreadable model.safetensors.index.json says permission denied', async () => {
    const dir = stories();
    const shard = 'model-00001-of-00001.safetensors';
    fs.renameSync(path.join(dir, 'model.safetensors'), path.join(dir, shard));
    const names = Object.keys(
      JSON.parse(
        (() => {
          const buf = fs.readFileSync(path.join(dir, shard));
          return buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString('utf8');
        })(),
      ),
    ).filter((k) => k !== '__metadata__');
    const index = path.join(dir, INDEX_FILE);
    fs.writeFileSync(index, JSON.stringify({ weight_map: Object.fromEntries(names.map((k) => [k, shard])) }));
    const m = await openModel(dir); // the sharded copy opens when readable
    await m.close();
    const readFile = fs.promises.readFile;
    vi.spyOn(fs.promises, 'readFile').mockImplementation(((p: fs.PathLike, o?: unknown) =>
      String(p) === index
        ? Promise.reject(fsError('EACCES', index))
        : readFile(p, o as BufferEncoding)) as typeof fs.promises.readFile);
    await expectRankwiseError(openModel(dir), 'bad-input', /cannot be read \(permission denied\)/, index);
  });

  it('an unreadable tokenizer.json says permission denied', async () => {
    const dir = stories();
    const file = path.join(dir, 'tokenizer.json');
    const readFile = fs.promises.readFile;
    vi.spyOn(fs.promises, 'readFile').mockImplementation(((p: fs.PathLike, o?: unknown) =>
      String(p) === file
        ? Promise.reject(fsError('EACCES', file))
        : readFile(p, o as BufferEncoding)) as typeof fs.promises.readFile);
    await expectRankwiseError(loadTokenizer(dir), 'bad-input', /cannot be read \(permission denied\)/, file);
  });
});
