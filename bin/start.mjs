#!/usr/bin/env node
// `npm start`: the desktop app when Electron's binary is installed, otherwise browser mode. Electron 45
// downloads its binary on first use, which fails offline, so we look for it on disk instead of requiring
// the package (requiring it would attempt the download).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function electronBinary() {
  const dir = path.join(root, 'node_modules', 'electron');
  try {
    const bin = path.join(dir, 'dist', readFileSync(path.join(dir, 'path.txt'), 'utf8').trim());
    return existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

const args = process.argv.slice(2);
// both faces serve the built renderer: build it on first start
if (!existsSync(path.join(root, 'dist', 'renderer', 'index.html'))) {
  const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  const built = spawnSync(process.execPath, [vite, 'build'], { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}
const bin = electronBinary();
if (bin) {
  const built = spawnSync(process.execPath, [path.join(root, 'build', 'esbuild.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
  const child = spawn(bin, [path.join(root, 'dist', 'electron', 'main.cjs'), ...args], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
} else {
  process.stderr.write('Electron is not installed on this machine; starting browser mode instead.\n');
  const child = spawn(process.execPath, [path.join(root, 'bin', 'rankwise.mjs'), 'serve', ...args], {
    stdio: 'inherit',
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code) => process.exit(code ?? 0));
}
