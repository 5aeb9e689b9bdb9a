/**
 * `npm run bench:scale` (issue 15 §6): how eval, compress and export scale from a 135M to a 1B model (and
 * 7B on request), on random-weight checkpoints with the exact shapes of real ones. Every measured command
 * is the real CLI in a child process, so its wall time includes what a user waits for (start-up, reading
 * the checkpoint, tokenising) and its peak RSS is its own, not the bench's.
 *
 * Knobs (environment):
 *   BENCH_SHAPES=135m,1b        shapes to run (default both; 7b is added by BENCH_7B=1)
 *   BENCH_7B=1                  also the 7B shape (writes ~13 GB into the cache folder)
 *   BENCH_SKIP_COMPRESS=1b,7b   shapes whose compress (and export) is skipped: the 1B compress took
 *                               ~16 min on 2 cores (issue 15); BENCH_SKIP_COMPRESS_1B=1 is the same for 1b
 *   BENCH_TIMEOUT_S=3600        per command; a command past it is killed and reported as such
 *   BENCH_CACHE=DIR             where checkpoints are generated (default $TMPDIR/rankwise-bench-scale;
 *                               a checkpoint already there is reused)
 *   BENCH_NO_EXPORT=1           compress without --out (no export figures)
 *   BENCH_JSON_DIR=DIR          keep each command's JSON there (to compare numbers between builds)
 *
 * Results go into docs/benchmarks.md by hand, with the date and machine.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import type { SyntheticRecipe } from '../main/model/synthetic.ts';

const here = path.dirname(new URL(import.meta.url).pathname);
const ROOT = path.resolve(here, '..');
const CLI = path.join(ROOT, 'bin', 'rankwise.mjs');
const TEXT = path.resolve(ROOT, '..', 'shared', 'testdata', 'text', 'tinystories_valid_excerpt.txt');

const WINDOW = 512;
/**
 * Windows of 512 per shape: eval's, and compress's calibration windows (one of them held out) and
 * evaluation windows. The 7B shape runs the issue's smaller protocol: one eval window, two calibration
 * windows, one evaluation window.
 */
const WINDOWS: Record<string, { eval: number; calib: number }> = {
  '135m': { eval: 4, calib: 4 },
  '1b': { eval: 4, calib: 4 },
  '7b': { eval: 1, calib: 2 },
};

/** Real checkpoints' shapes, random weights; `kvSpectrumDecay` gives kqsvd the low-rank structure real K/V have. */
const SHAPES: Record<string, { label: string; recipe: SyntheticRecipe }> = {
  '135m': {
    label: 'SmolLM2-135M shape',
    recipe: {
      modelType: 'llama',
      hiddenSize: 576,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      intermediateSize: 1536,
      vocabSize: 49152,
      maxPositions: 8192,
      dtype: 'BF16',
      tie: true,
      seed: 135,
      kvSpectrumDecay: 0.9,
      config: { rope_theta: 100000 },
    },
  },
  '1b': {
    label: 'Llama-3.2-1B shape',
    recipe: {
      modelType: 'llama',
      hiddenSize: 2048,
      numLayers: 16,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 64,
      intermediateSize: 8192,
      vocabSize: 128256,
      maxPositions: 131072,
      dtype: 'BF16',
      tie: true,
      seed: 1000,
      kvSpectrumDecay: 0.9,
      config: {
        rope_theta: 500000,
        rope_scaling: {
          rope_type: 'llama3',
          factor: 32,
          low_freq_factor: 1,
          high_freq_factor: 4,
          original_max_position_embeddings: 8192,
        },
      },
    },
  },
  '7b': {
    label: 'Llama-2-7B shape (32 layers, 4096, 32/8 heads, 11008)',
    recipe: {
      modelType: 'llama',
      hiddenSize: 4096,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 8,
      intermediateSize: 11008,
      vocabSize: 32000,
      maxPositions: 4096,
      dtype: 'BF16',
      tie: false,
      seed: 7000,
      // The 1B shape's spectrum over its 64 dimensions, stretched over 128: the last singular value is
      // 0.9^63 of the first in both. At 0.9 per dimension the last of 128 would be 1e-6 of the first, its
      // square in the value Gram below float32's resolution, and KQ-SVD's Cholesky rightly refuses that.
      kvSpectrumDecay: 0.9 ** (64 / 128),
      // 13 GB in one file is more than some tools read at once; real 7B checkpoints are sharded too
      shardBytes: 5 * 1024 ** 3,
    },
  },
};

const env = process.env;
const list = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
const shapes = list(env.BENCH_SHAPES ?? '135m,1b');
if (env.BENCH_7B === '1' && !shapes.includes('7b')) shapes.push('7b');
const skipCompress = new Set(list(env.BENCH_SKIP_COMPRESS));
if (env.BENCH_SKIP_COMPRESS_1B === '1') skipCompress.add('1b');
const timeoutS = Number(env.BENCH_TIMEOUT_S ?? 3600);
const cacheDir = env.BENCH_CACHE ?? path.join(os.tmpdir(), 'rankwise-bench-scale');
const withExport = env.BENCH_NO_EXPORT !== '1';

for (const s of shapes)
  if (!SHAPES[s]) throw new Error(`unknown shape "${s}"; known: ${Object.keys(SHAPES).join(', ')}`);

/** GNU time's -v report gives peak RSS and CPU share without polling; /proc polling is the fallback. */
const GNU_TIME = (() => {
  try {
    execFileSync('/usr/bin/time', ['-v', 'true'], { stdio: 'ignore' });
    return '/usr/bin/time';
  } catch {
    return null;
  }
})();

interface Measured {
  code: number | null;
  timedOut: boolean;
  wallS: number;
  peakRssMiB: number;
  /** CPU time ÷ wall time in percent (200 % = both cores of a 2-core machine busy throughout). */
  cpuPercent: number;
  stdout: string;
  stderrTail: string;
}

function readHwmKiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Runs a command to completion, with its own peak RSS and CPU share. */
function measure(cmd: string, args: string[], extraEnv: Record<string, string> = {}): Promise<Measured> {
  const timeFile = path.join(os.tmpdir(), `rankwise-scale-time-${process.pid}-${Date.now()}.txt`);
  const [exe, argv] = GNU_TIME ? [GNU_TIME, ['-v', '-o', timeFile, cmd, ...args]] : [cmd, args];
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(exe, argv, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    let hwm = 0;
    const poll = GNU_TIME ? null : setInterval(() => (hwm = Math.max(hwm, readHwmKiB(child.pid!))), 200);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      const wallS = (performance.now() - start) / 1000;
      let peakRssMiB = hwm / 1024;
      let cpuPercent = NaN;
      if (GNU_TIME && fs.existsSync(timeFile)) {
        const t = fs.readFileSync(timeFile, 'utf8');
        fs.rmSync(timeFile, { force: true });
        const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(t);
        const pct = /Percent of CPU this job got: (\d+)%/.exec(t);
        if (rss) peakRssMiB = Number(rss[1]) / 1024;
        if (pct) cpuPercent = Number(pct[1]);
        // GNU time reports the child's exit status as its own
        const exit = /Exit status: (\d+)/.exec(t);
        if (exit) code = Number(exit[1]);
      }
      resolve({ code, timedOut, wallS, peakRssMiB, cpuPercent, stdout, stderrTail: stderr.slice(-800) });
    });
  });
}

const fmt = (x: number | undefined, digits = 1) =>
  x === undefined || !Number.isFinite(x)
    ? '—'
    : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function ensureModel(key: string): Promise<{ dir: string; generatedS: number | null }> {
  const dir = path.join(cacheDir, key);
  const stamp = path.join(dir, '.complete');
  const fingerprint = JSON.stringify(SHAPES[key].recipe);
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === fingerprint)
    return { dir, generatedS: null };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  // in a child process, so the bench's memory does not carry the generator's arrays into later figures
  const script =
    `import { writeSyntheticModel } from ${JSON.stringify(path.join(ROOT, 'main/model/synthetic.ts'))};` +
    `await writeSyntheticModel(process.argv[1], JSON.parse(process.argv[2]));`;
  execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir, fingerprint], {
    stdio: 'inherit',
    cwd: ROOT,
  });
  fs.writeFileSync(stamp, fingerprint);
  return { dir, generatedS: (performance.now() - t0) / 1000 };
}

interface EvalJson {
  tokens: number;
  seconds: number;
  tokens_per_second: number;
  perplexity: number;
}
interface CompressJson {
  seconds: Record<string, number>;
  perplexity: { original: number; compressed: number };
  export?: { seconds: Record<string, number>; verification: { passed: boolean } };
}

function parse<T>(m: Measured, what: string): T | null {
  if (env.BENCH_JSON_DIR) {
    fs.mkdirSync(env.BENCH_JSON_DIR, { recursive: true });
    fs.writeFileSync(path.join(env.BENCH_JSON_DIR, `${what}.json`), m.stdout);
  }
  if (m.code !== 0) {
    console.log(
      `  ${what}: ${m.timedOut ? `killed after ${timeoutS} s (BENCH_TIMEOUT_S)` : `exit ${m.code}`}\n${m.stderrTail}`,
    );
    return null;
  }
  return JSON.parse(m.stdout) as T;
}

async function benchShape(key: string): Promise<void> {
  const { label } = SHAPES[key];
  console.log(`\n## ${key} — ${label}`);
  const { dir, generatedS } = await ensureModel(key);
  const bytes = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  console.log(
    `  checkpoint ${dir} (${fmt(bytes / 1024 ** 3, 2)} GiB; ${generatedS === null ? 'reused' : `generated in ${fmt(generatedS)} s`})`,
  );

  const win = WINDOWS[key];
  const ins = await measure(process.execPath, [CLI, 'inspect', dir, '--json']);
  if (ins.code !== 0) console.log(`  inspect: exit ${ins.code}\n${ins.stderrTail}`);
  const ev = await measure(process.execPath, [
    CLI,
    'eval',
    dir,
    '--data',
    TEXT,
    '--window',
    String(WINDOW),
    '--max-windows',
    String(win.eval),
    '--json',
    '-q',
  ]);
  const evalJson = parse<EvalJson>(ev, `${key}-eval`);

  let comp: Measured | null = null;
  let compJson: CompressJson | null = null;
  if (skipCompress.has(key)) {
    console.log('  compress: skipped (BENCH_SKIP_COMPRESS)');
  } else {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rankwise-scale-home-'));
    const out = path.join(home, 'export');
    try {
      // a fresh RANKWISE_HOME: the job cache would otherwise hand back layers fitted by an earlier run
      comp = await measure(
        process.execPath,
        [
          CLI,
          'compress',
          dir,
          '--calib',
          TEXT,
          '--eval',
          TEXT,
          '--method',
          'kqsvd',
          '--kv-fraction',
          '0.5',
          '--window',
          String(WINDOW),
          '--calib-windows',
          String(win.calib),
          '--eval-windows',
          String(win.eval),
          // the 7B protocol has no export: it would write another 13 GB
          ...(withExport && key !== '7b' ? ['--out', out] : []),
          '--json',
          '-q',
        ],
        { RANKWISE_HOME: home },
      );
      compJson = parse<CompressJson>(comp, `${key}-compress`);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  }

  const rows: [string, string][] = [];
  rows.push(['inspect: wall seconds, peak RSS MiB', `${fmt(ins.wallS)}, ${fmt(ins.peakRssMiB, 0)}`]);
  if (evalJson) {
    rows.push([`eval ${win.eval} × ${WINDOW}: tokens/s`, fmt(evalJson.tokens_per_second, 0)]);
    rows.push(['eval: forward seconds / wall seconds', `${fmt(evalJson.seconds)} / ${fmt(ev.wallS)}`]);
    rows.push(['eval: peak RSS MiB, CPU %', `${fmt(ev.peakRssMiB, 0)}, ${fmt(ev.cpuPercent, 0)}`]);
    rows.push(['eval: perplexity', fmt(evalJson.perplexity, 2)]);
  }
  if (comp && compJson) {
    const stages = Object.entries(compJson.seconds)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(', ');
    const compressS = Object.values(compJson.seconds).reduce((a, b) => a + b, 0);
    const exportS = compJson.export?.seconds.total ?? 0;
    rows.push(['compress: stages (s)', stages]);
    rows.push([
      'compress: stages sum / wall seconds (wall incl. export)',
      `${fmt(compressS)} / ${fmt(comp.wallS)}`,
    ]);
    if (compJson.export) {
      const e = Object.entries(compJson.export.seconds)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(', ');
      rows.push([
        'export: stages (s)',
        `${e}${compJson.export.verification.passed ? '' : ' (verification FAILED)'}`,
      ]);
    }
    rows.push([
      'compress(+export): peak RSS MiB, CPU %',
      `${fmt(comp.peakRssMiB, 0)}, ${fmt(comp.cpuPercent, 0)}`,
    ]);
    rows.push([
      'compress: perplexity original → compressed',
      `${fmt(compJson.perplexity.original, 2)} → ${fmt(compJson.perplexity.compressed, 2)}`,
    ]);
    if (evalJson) {
      // wall against wall: both pay start-up and checkpoint reading once, as a user of the CLI does
      rows.push([
        'compress ÷ eval, wall (compress wall less export)',
        fmt((comp.wallS - exportS) / ev.wallS, 1),
      ]);
      rows.push([
        'compress ÷ eval, engine (stages sum ÷ eval forward)',
        fmt(compressS / evalJson.seconds, 1),
      ]);
    }
  }
  for (const [k, v] of rows) console.log(`  ${k.padEnd(56)} ${v}`);
}

console.log(
  `Rankwise bench:scale — ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}, ` +
    `${fmt(os.totalmem() / 1024 ** 3, 0)} GiB, node ${process.version}, ${new Date().toISOString()}; ` +
    `peak RSS and CPU % by ${GNU_TIME ? 'GNU time -v' : '/proc VmHWM polling (no CPU %)'}; cache ${cacheDir}`,
);
fs.mkdirSync(cacheDir, { recursive: true });
for (const key of shapes) await benchShape(key);
