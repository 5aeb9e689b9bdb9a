// Bundles the desktop shell: electron/app.ts (with the engine) → dist/electron/main.cjs, and
// electron/preload.ts → dist/electron/preload.cjs. Runs in plain Node; Electron is never loaded.
//
//   node build/esbuild.mjs
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = path.join(root, 'dist', 'electron');

// Loaded from node_modules at run time: native addons, and packages whose files must stay where they are.
const MAIN_EXTERNALS = [
  'electron',
  'onnxruntime-node',
  'rankwise-native',
  'ws',
  '@huggingface/tokenizers',
  'hyparquet',
  'protobufjs',
];

/**
 * The engine finds its assets, its addon and its worker entry relative to its own source files through
 * `import.meta.url`, which a CommonJS bundle does not have. Each use is replaced by the URL the source
 * file has in the app's layout (the same relative place from dist/electron, in the repository and in
 * the packaged app alike), so `new URL('../../assets/…', import.meta.url)` keeps pointing at assets/.
 */
const importMetaUrlPlugin = {
  name: 'import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const fromBundle = path.relative(outdir, args.path).split(path.sep).join('/');
      const url = `require('node:url').pathToFileURL(require('node:path').join(__dirname, ${JSON.stringify(fromBundle)})).href`;
      const loader = /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js';
      return { contents: source.replaceAll('import.meta.url', `(${url})`), loader };
    });
  },
};

const common = {
  absWorkingDir: root,
  bundle: true,
  format: 'cjs',
  sourcemap: 'linked',
  logLevel: 'warning',
  metafile: true,
  legalComments: 'none',
};

/** Imports the bundle leaves to run time, so a stray one in the preload fails the build, not the app. */
function runtimeImports(result) {
  const found = new Set();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const imp of output.imports) if (imp.external) found.add(imp.path);
  }
  return [...found].sort();
}

await rm(outdir, { recursive: true, force: true });

const main = await build({
  ...common,
  entryPoints: [path.join(root, 'electron', 'app.ts')],
  outfile: path.join(outdir, 'main.cjs'),
  platform: 'node',
  // Electron 45 runs Node 22
  target: 'node22',
  external: MAIN_EXTERNALS,
  plugins: [importMetaUrlPlugin],
});

const preload = await build({
  ...common,
  entryPoints: [path.join(root, 'electron', 'preload.ts')],
  outfile: path.join(outdir, 'preload.cjs'),
  // a sandboxed preload has no Node: the browser platform makes any Node import a build error
  platform: 'browser',
  target: 'chrome140',
  external: ['electron'],
});

const preloadImports = runtimeImports(preload);
if (preloadImports.some((name) => name !== 'electron')) {
  console.error(`preload.cjs must require only 'electron'; it requires ${preloadImports.join(', ')}`);
  process.exit(1);
}

for (const [name, result] of [
  ['main.cjs', main],
  ['preload.cjs', preload],
]) {
  const output =
    result.metafile.outputs[path.relative(root, path.join(outdir, name)).split(path.sep).join('/')];
  const kib = output ? `${(output.bytes / 1024).toFixed(0)} KiB` : '?';
  console.log(`dist/electron/${name}  ${kib}  requires: ${runtimeImports(result).join(', ') || 'nothing'}`);
}
