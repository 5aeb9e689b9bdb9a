/**
 * The Done-when of audit #13: a few hundred malformed model folders and data files, each run through the
 * real CLI as a child process,
 *
 *   node bin/rankwise.mjs eval DIR --data FILE --max-windows 1 --window 64
 *
 * must end with exit 2 and one line on stderr naming the file (or exit 0 where the mutation happens to
 * be harmless, e.g. a bit flip in a float's low mantissa bits), never exit 1, never a stack trace, within
 * 60 s and 2 GB of peak RSS. Whether a case must be refused or may also succeed is decided per case,
 * deterministically, when it is generated (a truncated JSON file that no longer parses must be refused; a
 * flipped weight bit that leaves a finite float may do either).
 *
 * The mutations start from the real ../shared/testdata/stories260K-llama files: truncations at many
 * offsets and bit flips at many positions of config.json, model.safetensors, tokenizer.json and
 * tokenizer_config.json; configs with every numeric key missing, negative, zero, huge, infinite (1e999)
 * or a string; poisoned and overflowing weights; data files that are empty, binary, truncated
 * .gz, bad .jsonl/.json lines and bad parquet; unreadable files and symbolic link loops. Seeds are fixed.
 *
 * Progress lines ("[eval] layer 2 3/7, ETA 0.1 s") are what the CLI writes to stderr while it works, not
 * messages; a weight refused as its layer loads comes after them, so they are not counted as lines.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { mulberry32, randomInt } from '../../main/model/prng.ts';
import { STORIES_DIR, TINYSTORIES_TEXT } from '../helpers/paths.ts';
import { messageLines, runRankwise, unprivilegedUser, type ChildResult } from './child.ts';

const SEED = 13;
const CONCURRENCY = 2;
const WALL_LIMIT_MS = 60_000;
const RSS_LIMIT_KB = 2 * 1024 * 1024;

const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
];
const PRISTINE = Object.fromEntries(MODEL_FILES.map((f) => [f, fs.readFileSync(path.join(STORIES_DIR, f))]));
/** 20 KB of the TinyStories excerpt: enough for one window of 64, small enough to be read whole. */
const GOOD_TEXT = fs.readFileSync(TINYSTORIES_TEXT).subarray(0, 20_000);

type Expect = 'refuse' | 'either';

interface Built {
  model: string;
  data: string;
}

interface Case {
  name: string;
  /** 'refuse': exit 2 required. 'either': exit 0 or 2 (a mutation that may be harmless). */
  expect: Expect;
  /** What the one stderr line must match when refused (the file it must name). */
  names: RegExp;
  /** Writes the case's model folder and data file under `dir` (which exists, empty). */
  build(dir: string): Built;
  /** Needs EACCES: run as an unprivileged user when the tests run as root. */
  unprivileged?: boolean;
}

let root = '';
let user: ReturnType<typeof unprivilegedUser>;
let pristineModel = '';
let goodData = '';

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'rankwise-fuzz-'));
  fs.chmodSync(root, 0o755); // an unprivileged child must reach the case folders
  pristineModel = writeModel(path.join(root, 'pristine'));
  goodData = path.join(root, 'good.txt');
  fs.writeFileSync(goodData, GOOD_TEXT);
  user = unprivilegedUser(path.join(root, 'home'));
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** A copy of stories260K with `files` replacing (or, when null, removing) some of its files. */
function writeModel(dir: string, files: Record<string, Uint8Array | string | null> = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of MODEL_FILES) {
    const content = Object.hasOwn(files, f) ? files[f] : PRISTINE[f];
    if (content !== null) fs.writeFileSync(path.join(dir, f), content);
  }
  return dir;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const naming = (...files: string[]) => new RegExp(files.map(escape).join('|'));

function parses(bytes: Uint8Array): boolean {
  try {
    const v: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** The model with one file replaced, reading the good text. */
function modelCase(name: string, expect: Expect, file: string, content: Uint8Array | string | null): Case {
  return {
    name,
    expect,
    names: naming(file),
    build: (dir) => ({ model: writeModel(path.join(dir, 'model'), { [file]: content }), data: goodData }),
  };
}

/** The pristine model reading a data file written as `fileName`. */
function dataCase(name: string, expect: Expect, fileName: string, content: Uint8Array | string): Case {
  return {
    name,
    expect,
    names: naming(fileName),
    build: (dir) => {
      const data = path.join(dir, fileName);
      fs.writeFileSync(data, content);
      return { model: pristineModel, data };
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Case generation

function truncations(rng: () => number): Case[] {
  const cases: Case[] = [];
  const offsetsFor = (size: number, fixed: number[], random: number) => {
    const set = new Set(fixed.filter((o) => o >= 0 && o < size));
    while (set.size < fixed.length + random) set.add(randomInt(rng, size));
    return [...set].sort((a, b) => a - b);
  };
  for (const [file, random] of [
    ['config.json', 5],
    ['tokenizer.json', 5],
    ['tokenizer_config.json', 3],
  ] as const) {
    const bytes = PRISTINE[file];
    for (const at of offsetsFor(bytes.length, [0, 1, bytes.length - 1], random)) {
      const cut = bytes.subarray(0, at);
      cases.push(modelCase(`truncate ${file} at ${at}`, parses(cut) ? 'either' : 'refuse', file, cut));
    }
  }
  const st = PRISTINE['model.safetensors'];
  const headerEnd = 8 + Number(st.readBigUInt64LE(0));
  const fixed = [0, 4, 7, 8, 100, headerEnd - 1, headerEnd, headerEnd + 1, st.length - 4, st.length - 1];
  for (const at of offsetsFor(st.length, fixed, 4)) {
    // every byte of a safetensors file is accounted for: any truncation must be refused
    cases.push(
      modelCase(`truncate model.safetensors at ${at}`, 'refuse', 'model.safetensors', st.subarray(0, at)),
    );
  }
  return cases;
}

function flipBit(bytes: Uint8Array, bit: number): Buffer {
  const out = Buffer.from(bytes);
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

function bitFlips(rng: () => number): Case[] {
  const cases: Case[] = [];
  for (const [file, count] of [
    ['config.json', 8],
    ['tokenizer.json', 8],
    ['tokenizer_config.json', 4],
  ] as const) {
    const bytes = PRISTINE[file];
    for (let k = 0; k < count; k++) {
      const bit = randomInt(rng, bytes.length * 8);
      const flipped = flipBit(bytes, bit);
      // still a JSON object: the change may be harmless (a digit of initializer_range, a letter of a name)
      const expect: Expect = parses(flipped) ? 'either' : 'refuse';
      // whichever file the changed value upsets is named (config.json, tokenizer.json, model.safetensors)
      cases.push({ ...modelCase(`flip bit ${bit} of ${file}`, expect, file, flipped), names: /\// });
    }
  }

  const st = PRISTINE['model.safetensors'];
  const headerEnd = 8 + Number(st.readBigUInt64LE(0));
  // the header: a flip that keeps it valid JSON may only rename a tensor or change metadata
  for (let k = 0; k < 6; k++) {
    const bit = 64 + randomInt(rng, (headerEnd - 8) * 8);
    const flipped = flipBit(st, bit);
    const header = flipped.subarray(8, headerEnd);
    const expect: Expect = parses(header) ? 'either' : 'refuse';
    cases.push(
      modelCase(`flip bit ${bit} of model.safetensors (header)`, expect, 'model.safetensors', flipped),
    );
  }
  // the data: the flipped float decides. Not finite: must be refused. Finite: sign and mantissa flips are
  // harmless, exponent flips may overflow float32 at run time (refused) or not (a changed model).
  const dataBits = (st.length - headerEnd) * 8;
  const picks: number[] = [];
  for (let k = 0; k < 10; k++) picks.push(headerEnd * 8 + randomInt(rng, dataBits));
  // and exponent bits on purpose: bit 30 turns a small weight huge, bits 23..29 rescale it
  for (let k = 0; k < 6; k++) {
    const element = randomInt(rng, (st.length - headerEnd) / 4);
    picks.push((headerEnd + 4 * element) * 8 + 23 + randomInt(rng, 8));
  }
  for (const bit of picks) {
    const flipped = flipBit(st, bit);
    const at = (bit >> 3) & ~3; // the float32 holding the bit (data starts 8-aligned)
    const value = flipped.readFloatLE(at);
    const expect: Expect = Number.isFinite(value) ? 'either' : 'refuse';
    cases.push(
      modelCase(
        `flip bit ${bit} of model.safetensors (data, now ${value})`,
        expect,
        'model.safetensors',
        flipped,
      ),
    );
  }
  return cases;
}

/** Rewrites tensor data in a copy of model.safetensors: `edit` gets each tensor's float32 view. */
function editTensors(edit: (name: string, data: Float32Array) => void): Buffer {
  const st = Buffer.from(PRISTINE['model.safetensors']);
  const n = Number(st.readBigUInt64LE(0));
  const header = JSON.parse(st.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = t.data_offsets;
    const copy = new Float32Array(st.buffer.slice(st.byteOffset + 8 + n + b, st.byteOffset + 8 + n + e));
    edit(name, copy);
    Buffer.from(copy.buffer).copy(st, 8 + n + b);
  }
  return st;
}

function weights(): Case[] {
  const poison = (name: string, tensor: string, value: number, element = 3): Case =>
    modelCase(
      name,
      'refuse',
      'model.safetensors',
      editTensors((n, d) => {
        if (n === tensor) d[element] = value;
      }),
    );
  return [
    poison('NaN in the embeddings', 'model.embed_tokens.weight', NaN, 1000),
    poison('+Infinity in layer 0 q_proj', 'model.layers.0.self_attn.q_proj.weight', Infinity),
    poison('-Infinity in layer 4 down_proj', 'model.layers.4.mlp.down_proj.weight', -Infinity),
    poison('NaN in the final norm', 'model.norm.weight', NaN, 0),
    poison('NaN in layer 2 input_layernorm', 'model.layers.2.input_layernorm.weight', NaN, 63),
    modelCase(
      'layer 1 down_proj all 3e38 (overflows float32)',
      'refuse',
      'model.safetensors',
      editTensors((n, d) => {
        if (n === 'model.layers.1.mlp.down_proj.weight') d.fill(3e38);
      }),
    ),
    // RMSNorm squares overflow to Infinity, rsqrt(Infinity) = 0: finite nonsense, as in PyTorch
    modelCase(
      'the embeddings all 1e30',
      'either',
      'model.safetensors',
      editTensors((n, d) => {
        if (n === 'model.embed_tokens.weight') d.fill(1e30);
      }),
    ),
    modelCase(
      'one weight of 3e38 in layer 3 up_proj',
      'either',
      'model.safetensors',
      editTensors((n, d) => {
        if (n === 'model.layers.3.mlp.up_proj.weight') d[7] = 3e38;
      }),
    ),
  ];
}

/** A config error names config.json, or the weights it no longer fits (a shape, a tensor no file holds). */
const CONFIG_NAMES = /config\.json|model\.safetensors/;

const STORIES_CONFIG = JSON.parse(PRISTINE['config.json'].toString('utf8')) as Record<string, unknown>;

function configs(): Case[] {
  const cases: Case[] = [];
  // raw JSON text for each value: 1e999 parses to Infinity, which JSON.stringify cannot write
  const values: [string, string | null][] = [
    ['missing', null],
    ['-1', '-1'],
    ['0', '0'],
    ['2^53-1', '9007199254740991'],
    ['1e999', '1e999'],
    ['"NaN"', '"NaN"'],
  ];
  const required = [
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'vocab_size',
    'max_position_embeddings',
  ];
  const keys = [...required, 'num_key_value_heads', 'head_dim', 'rms_norm_eps', 'rope_theta', 'eos_token_id'];
  const expectFor = (key: string, label: string): Expect => {
    if (required.includes(key)) return 'refuse';
    // absent: num_key_value_heads defaults to 8 heads (k_proj no longer fits), the rest to a valid value
    if (label === 'missing') return key === 'num_key_value_heads' ? 'refuse' : 'either';
    if (key === 'bos_token_id' || key === 'eos_token_id') return 'either'; // ignored unless valid
    if (key === 'rope_theta' && label === '2^53-1') return 'either'; // odd but valid
    return 'refuse';
  };
  for (const key of keys) {
    for (const [label, raw] of values) {
      const text = configText(key, raw);
      cases.push({
        ...modelCase(`config ${key} = ${label}`, expectFor(key, label), 'config.json', text),
        names: CONFIG_NAMES,
      });
    }
  }
  const whole: [string, string][] = [
    ['config is an array', '[1, 2]'],
    ['config is a string', '"llama"'],
    ['config is empty', '{}'],
    ['config has no model_type', json({ ...STORIES_CONFIG, model_type: undefined })],
    ['model_type falcon', json({ ...STORIES_CONFIG, model_type: 'falcon' })],
    ['model_type is a number', json({ ...STORIES_CONFIG, model_type: 7 })],
    ['rope_scaling longrope', json({ ...STORIES_CONFIG, rope_scaling: { type: 'longrope', factor: 2 } })],
    ['quantization_config', json({ ...STORIES_CONFIG, quantization_config: { bits: 4 } })],
    ['hidden_act relu2', json({ ...STORIES_CONFIG, hidden_act: 'relu2' })],
    ['untied embeddings without lm_head', json({ ...STORIES_CONFIG, tie_word_embeddings: false })],
    ['attention_bias without biases', json({ ...STORIES_CONFIG, attention_bias: true })],
    ['max_position_embeddings 32 < window', json({ ...STORIES_CONFIG, max_position_embeddings: 32 })],
    ['num_hidden_layers 4 of 5', json({ ...STORIES_CONFIG, num_hidden_layers: 4 })],
    ['num_hidden_layers 6 of 5', json({ ...STORIES_CONFIG, num_hidden_layers: 6 })],
    [
      'kv_compression garbage',
      json({ ...STORIES_CONFIG, kv_compression: { format: 'rankwise', version: 1 } }),
    ],
  ];
  for (const [name, text] of whole) {
    cases.push({ ...modelCase(name, 'refuse', 'config.json', text), names: CONFIG_NAMES });
  }
  return cases;
}

function json(v: unknown): string {
  return JSON.stringify(v, null, 2);
}

/** The stories config with `key` set to the raw JSON `raw` (removed when null). */
function configText(key: string, raw: string | null): string {
  const marker = '"__value__"';
  const cfg: Record<string, unknown> = { ...STORIES_CONFIG };
  if (raw === null) {
    delete cfg[key];
    return json(cfg);
  }
  cfg[key] = '__value__';
  return json(cfg).replace(marker, raw);
}

function parquet(columns: { name: string; data: unknown[]; type: string }[]): Uint8Array {
  return new Uint8Array(parquetWriteBuffer({ columnData: columns as never }));
}

function dataFiles(rng: () => number): Case[] {
  const text = GOOD_TEXT.toString('utf8');
  const stories = text.split('\n\n').filter((s) => s.trim().length > 0);
  const garbage = Buffer.alloc(4096);
  for (let i = 0; i < garbage.length; i++) garbage[i] = randomInt(rng, 256);
  const gz = zlib.gzipSync(GOOD_TEXT);
  const jsonl = stories.map((s) => JSON.stringify({ text: s })).join('\n');
  const goodParquet = parquet([{ name: 'text', data: stories, type: 'STRING' }]);

  const cases: Case[] = [
    dataCase('empty .txt', 'refuse', 'empty.txt', ''),
    dataCase('whitespace .txt', 'refuse', 'blank.txt', ' \n\t\r\n  '),
    dataCase('random bytes .txt', 'refuse', 'garbage.txt', garbage),
    dataCase('NUL bytes in text', 'refuse', 'nul.txt', Buffer.concat([GOOD_TEXT, Buffer.from([0])])),
    dataCase(
      'UTF-16 text',
      'refuse',
      'utf16.txt',
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]),
    ),
    dataCase('Latin-1 text', 'refuse', 'latin1.txt', Buffer.from('caf\xe9 '.repeat(500), 'latin1')),
    dataCase('too short for one window', 'refuse', 'short.txt', 'Once upon a time.'),
    dataCase('unsupported extension', 'refuse', 'data.csv', text),
    dataCase('no extension', 'refuse', 'data', text),
    dataCase('random bytes .txt.gz', 'refuse', 'garbage.txt.gz', garbage),
    dataCase('plain text named .gz', 'refuse', 'plain.txt.gz', text),
    dataCase('gzip of binary', 'refuse', 'binary.txt.gz', zlib.gzipSync(garbage)),
    dataCase('gzip of nothing', 'refuse', 'nothing.txt.gz', zlib.gzipSync('')),
    dataCase(
      'gzip with trailing garbage',
      'refuse',
      'trailing.txt.gz',
      Buffer.concat([gz, garbage.subarray(0, 64)]),
    ),
    dataCase(
      '600 MiB gzip bomb of "a" (multi-member)',
      'either',
      'bomb.txt.gz',
      Buffer.concat(Array.from({ length: 600 }, () => zlib.gzipSync(Buffer.alloc(1024 * 1024, 'a')))),
    ),
    dataCase('.jsonl line not JSON', 'refuse', 'bad-line.jsonl', jsonl + '\n{"text": "unterminated\n'),
    dataCase('.jsonl line without text', 'refuse', 'no-text.jsonl', jsonl + '\n{"body": "x"}\n'),
    dataCase('.jsonl text is a number', 'refuse', 'number.jsonl', '{"text": 5}\n' + jsonl),
    dataCase('.jsonl line is an array', 'refuse', 'array.jsonl', jsonl + '\n["a"]\n'),
    dataCase('.jsonl every text empty', 'refuse', 'empty-texts.jsonl', '{"text": ""}\n{"text": "  "}\n'),
    dataCase('.jsonl of binary', 'refuse', 'binary.jsonl', garbage),
    dataCase('.jsonl.gz truncated', 'refuse', 'cut.jsonl.gz', zlib.gzipSync(jsonl).subarray(0, 500)),
    dataCase('.json truncated', 'refuse', 'cut.json', JSON.stringify(stories).slice(0, 300)),
    dataCase('.json in the wrong shape', 'refuse', 'shape.json', JSON.stringify({ data: stories })),
    dataCase('.json a number', 'refuse', 'number.json', '42'),
    dataCase('.json an item without text', 'refuse', 'item.json', JSON.stringify([stories[0], { body: 1 }])),
    dataCase('.json an empty array', 'refuse', 'empty.json', '[]'),
    dataCase('.json of JSON lines', 'refuse', 'lines.json', jsonl),
    dataCase('random bytes .parquet', 'refuse', 'garbage.parquet', garbage),
    dataCase('text named .parquet', 'refuse', 'text.parquet', text),
    dataCase(
      'parquet without a text column',
      'refuse',
      'columns.parquet',
      parquet([{ name: 'body', data: stories, type: 'STRING' }]),
    ),
    dataCase(
      'parquet with a null row',
      'refuse',
      'null.parquet',
      parquet([{ name: 'text', data: [stories[0], null], type: 'STRING' }]),
    ),
    dataCase('empty parquet file', 'refuse', 'empty.parquet', ''),
  ];
  const gzCuts = new Set([1, 10, 18, gz.length - 8, gz.length - 1]);
  while (gzCuts.size < 7) gzCuts.add(randomInt(rng, gz.length));
  for (const at of [...gzCuts].sort((a, b) => a - b)) {
    cases.push(dataCase(`.txt.gz truncated at ${at}`, 'refuse', `cut-${at}.txt.gz`, gz.subarray(0, at)));
  }
  for (const at of [
    0,
    4,
    50,
    Math.floor(goodParquet.length / 2),
    goodParquet.length - 9,
    goodParquet.length - 1,
  ]) {
    cases.push(
      dataCase(`parquet truncated at ${at}`, 'refuse', `cut-${at}.parquet`, goodParquet.subarray(0, at)),
    );
  }
  for (let k = 0; k < 4; k++) {
    const bit = randomInt(rng, goodParquet.length * 8);
    cases.push(
      dataCase(
        `flip bit ${bit} of a parquet file`,
        'either',
        `flip-${bit}.parquet`,
        flipBit(goodParquet, bit),
      ),
    );
  }
  for (let k = 0; k < 3; k++) {
    const bit = randomInt(rng, gz.length * 8);
    cases.push(dataCase(`flip bit ${bit} of a .txt.gz`, 'either', `flip-${bit}.txt.gz`, flipBit(gz, bit)));
  }
  return cases;
}

function folders(): Case[] {
  const tok = JSON.parse(PRISTINE['tokenizer.json'].toString('utf8'));
  tok.added_tokens.push({ id: 600, content: '<extra>', special: true, normalized: false });
  const header = JSON.parse(
    PRISTINE['model.safetensors']
      .subarray(8, 8 + Number(PRISTINE['model.safetensors'].readBigUInt64LE(0)))
      .toString('utf8'),
  );
  const tensorNames = Object.keys(header).filter((k) => k !== '__metadata__');
  const shard = 'model-00001-of-00001.safetensors';
  const INDEX = 'model.safetensors.index.json';
  const sharded = (dir: string, index: string): string => {
    const model = writeModel(path.join(dir, 'model'), { 'model.safetensors': null });
    fs.writeFileSync(path.join(model, shard), PRISTINE['model.safetensors']);
    fs.writeFileSync(path.join(model, INDEX), index);
    return model;
  };
  const goodIndex = JSON.stringify({ weight_map: Object.fromEntries(tensorNames.map((n) => [n, shard])) });
  const loop = (file: string): Case => ({
    name: `${file} is a symbolic link loop`,
    expect: 'refuse',
    names: naming(file),
    build: (dir) => {
      const model = writeModel(path.join(dir, 'model'), { [file]: null });
      fs.symlinkSync(path.join(model, file), path.join(model, file));
      return { model, data: goodData };
    },
  });
  const unreadable = (file: string): Case => ({
    name: `${file} cannot be read (mode 000)`,
    expect: 'refuse',
    names: new RegExp(`${escape(file)}: cannot be read \\(permission denied\\)`),
    unprivileged: true,
    build: (dir) => {
      const model = file === INDEX ? sharded(dir, goodIndex) : writeModel(path.join(dir, 'model'));
      fs.chmodSync(path.join(model, file), 0o000);
      return { model, data: goodData };
    },
  });
  return [
    modelCase('no config.json', 'refuse', 'config.json', null),
    modelCase('no tokenizer.json', 'refuse', 'tokenizer.json', null),
    {
      ...modelCase('no model.safetensors', 'refuse', 'model.safetensors', null),
      names: /\/model: no weights/,
    },
    modelCase('tokenizer ids beyond vocab_size', 'refuse', 'tokenizer.json', JSON.stringify(tok)),
    modelCase('tokenizer.json is not a tokenizer', 'refuse', 'tokenizer.json', '{"vocab_size": 512}'),
    modelCase(
      'tokenizer.json of an unknown model type',
      'refuse',
      'tokenizer.json',
      '{"model": {"type": "Nonsense"}}',
    ),
    modelCase('tokenizer_config.json is an array', 'refuse', 'tokenizer_config.json', '[]'),
    {
      name: 'model.safetensors is a folder',
      expect: 'refuse',
      names: naming('model.safetensors', 'model'),
      build: (dir) => {
        const model = writeModel(path.join(dir, 'model'), { 'model.safetensors': null });
        fs.mkdirSync(path.join(model, 'model.safetensors'));
        return { model, data: goodData };
      },
    },
    {
      name: 'the model folder is a file',
      expect: 'refuse',
      names: naming('model'),
      build: (dir) => {
        const model = path.join(dir, 'model');
        fs.writeFileSync(model, 'not a folder');
        return { model, data: goodData };
      },
    },
    {
      name: 'the model folder is a symbolic link loop',
      expect: 'refuse',
      names: /symbolic link loop/,
      build: (dir) => {
        const model = path.join(dir, 'model');
        fs.symlinkSync(model, model);
        return { model, data: goodData };
      },
    },
    {
      name: 'the data file is a symbolic link loop',
      expect: 'refuse',
      names: /loop\.txt: .*symbolic link loop/,
      build: (dir) => {
        const data = path.join(dir, 'loop.txt');
        fs.symlinkSync(data, data);
        return { model: pristineModel, data };
      },
    },
    {
      name: 'the data file is a folder',
      expect: 'refuse',
      names: /folder\.txt/,
      build: (dir) => {
        const data = path.join(dir, 'folder.txt');
        fs.mkdirSync(data);
        return { model: pristineModel, data };
      },
    },
    {
      name: 'the data file does not exist',
      expect: 'refuse',
      names: /missing\.txt/,
      build: (dir) => ({ model: pristineModel, data: path.join(dir, 'missing.txt') }),
    },
    loop('config.json'),
    loop('model.safetensors'),
    loop('tokenizer.json'),
    ...[
      ['an index that is not JSON', '{"weight_map": '],
      [
        'an index naming a missing shard',
        JSON.stringify({ weight_map: { [tensorNames[0]]: 'model-00002-of-00002.safetensors' } }),
      ],
      [
        'an index with a path outside the folder',
        JSON.stringify({ weight_map: { [tensorNames[0]]: '../x.safetensors' } }),
      ],
      [
        'an index mapping a tensor to the wrong shard',
        JSON.stringify({ weight_map: { 'no.such.tensor': shard } }),
      ],
      ['an index without weight_map', '{"metadata": {}}'],
    ].map(([name, index]): Case => ({
      name,
      expect: 'refuse',
      names: naming(INDEX),
      build: (dir) => ({ model: sharded(dir, index), data: goodData }),
    })),
    unreadable('config.json'),
    unreadable('tokenizer.json'),
    unreadable('tokenizer_config.json'),
    unreadable('model.safetensors'),
    unreadable(INDEX),
    {
      name: 'the model folder cannot be entered (mode 600)',
      expect: 'refuse',
      names: /permission denied/,
      unprivileged: true,
      build: (dir) => {
        const model = writeModel(path.join(dir, 'model'));
        fs.chmodSync(model, 0o600);
        return { model, data: goodData };
      },
    },
    {
      name: 'the data file cannot be read (mode 000)',
      expect: 'refuse',
      names: /secret\.txt: cannot be read \(permission denied\)/,
      unprivileged: true,
      build: (dir) => {
        const data = path.join(dir, 'secret.txt');
        fs.writeFileSync(data, GOOD_TEXT);
        fs.chmodSync(data, 0o000);
        return { model: pristineModel, data };
      },
    },
  ];
}

function allCases(): Case[] {
  const rng = mulberry32(SEED);
  return [...truncations(rng), ...bitFlips(rng), ...weights(), ...configs(), ...dataFiles(rng), ...folders()];
}

// ---------------------------------------------------------------------------------------------------
// Running

interface Outcome {
  c: Case;
  r: ChildResult;
  problems: string[];
}

function judge(c: Case, r: ChildResult, dir: string): string[] {
  const problems: string[] = [];
  if (r.timedOut) problems.push(`ran past ${WALL_LIMIT_MS / 1000} s`);
  if (r.wallMs >= WALL_LIMIT_MS) problems.push(`took ${(r.wallMs / 1000).toFixed(1)} s`);
  if (r.peakRssKb !== null && r.peakRssKb >= RSS_LIMIT_KB) problems.push(`peak RSS ${r.peakRssKb} KiB`);
  if (r.stderr.includes('    at ')) problems.push('a stack trace on stderr');
  const lines = messageLines(r.stderr);
  if (r.code === 2) {
    if (lines.length !== 1) problems.push(`${lines.length} lines on stderr`);
    else {
      if (!lines[0].startsWith('rankwise eval: ')) problems.push(`unexpected line: ${lines[0]}`);
      // names a file: a path inside this case's folder, the pristine model or the data file
      if (!lines[0].includes(dir) && !lines[0].includes(root))
        problems.push(`names no input file: ${lines[0]}`);
      if (!c.names.test(lines[0])) problems.push(`does not name ${c.names}: ${lines[0]}`);
    }
  } else if (r.code === 0) {
    if (c.expect === 'refuse') problems.push('succeeded but must be refused');
    else if (!/perplexity\s+\d+\.\d+/.test(r.stdout))
      problems.push(`exit 0 without a finite perplexity: ${r.stdout}`);
  } else {
    problems.push(`exit ${r.code ?? r.signal}: ${lines.join(' | ').slice(0, 300)}`);
  }
  return problems;
}

async function runCase(c: Case, index: number): Promise<Outcome> {
  const dir = path.join(root, `case-${String(index).padStart(3, '0')}`);
  fs.mkdirSync(dir);
  try {
    const { model, data } = c.build(dir);
    const r = await runRankwise(['eval', model, '--data', data, '--max-windows', '1', '--window', '64'], {
      timeoutMs: WALL_LIMIT_MS + 5_000,
      asUser: c.unprivileged ? user : undefined,
    });
    return { c, r, problems: judge(c, r, dir) };
  } finally {
    // a folder left at mode 600 must not stop the removal (when the tests do not run as root)
    const model = path.join(dir, 'model');
    if (fs.lstatSync(model, { throwIfNoEntry: false })?.isDirectory()) fs.chmodSync(model, 0o755);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe('malformed model folders and data files', () => {
  it('are refused with exit 2 and one line naming the file (or pass when harmless), in bounded time and memory', async () => {
    const shared = [...MODEL_FILES.map((f) => path.join(STORIES_DIR, f)), TINYSTORIES_TEXT];
    const before = shared.map(sha256);
    const cases = allCases();
    expect(cases.length).toBeGreaterThanOrEqual(100);

    const outcomes: Outcome[] = new Array(cases.length);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < cases.length) {
          const i = next++;
          outcomes[i] = await runCase(cases[i], i);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;

    const refused = outcomes.filter((o) => o.r.code === 2).length;
    const succeeded = outcomes.filter((o) => o.r.code === 0).length;
    const crashed = outcomes.length - refused - succeeded;
    const maxWall = Math.max(...outcomes.map((o) => o.r.wallMs)) / 1000;
    const maxRss = Math.max(...outcomes.map((o) => o.r.peakRssKb ?? 0)) / 1024;
    const lost = shared.filter((f, i) => !fs.existsSync(f) || sha256(f) !== before[i]).length;
    const mustRefuse = cases.filter((c) => c.expect === 'refuse').length;
    console.log(
      `fuzz: ${outcomes.length} cases tried (${mustRefuse} must be refused), ${refused} refused (exit 2), ` +
        `${succeeded} succeeded (exit 0), ${crashed} crashed (exit 1, signal or timeout); ` +
        `${lost} source files changed; slowest ${maxWall.toFixed(2)} s, peak RSS ${maxRss.toFixed(0)} MiB ` +
        `at most; ${seconds.toFixed(0)} s in all` +
        (user ? ' (permission cases as uid 65534)' : ''),
    );

    const failures = outcomes
      .filter((o) => o.problems.length > 0)
      .map((o) => `${o.c.name} [${o.c.expect}]: ${o.problems.join('; ')}`);
    expect(failures).toEqual([]);
    expect(crashed).toBe(0);
    expect(lost).toBe(0);
  }, 300_000);
});
