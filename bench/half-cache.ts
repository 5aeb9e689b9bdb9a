/**
 * Every method at half the KV cache on stories260K (`--kv-fraction 0.5`, allocated per layer), with the
 * time each took: the comparison table of docs/methods.md. Calibration on the first half of the TinyStories
 * excerpt (32 windows of 512), evaluation on 64 windows of its second half. Run: `npm run bench:half`.
 *
 *   BENCH_METHODS=kqsvd,ksvd     only these methods
 *   BENCH_PROFILE_TOKENS=32      the profile on 32 sampled positions per held-out window (a wide model's
 *                                default) instead of every position, to see what sampling costs in quality
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compress } from '../main/jobs/compress.ts';
import { METHOD_IDS } from '../main/methods/index.ts';
import { docsProtocolTexts, STORIES } from './docs-protocol.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rankwise-half-'));
const { calib, evalFile } = docsProtocolTexts(tmp);

console.log(
  '| method | key spaces chosen | perplexity (original → compressed) | KV bytes/token | time (s) | of which training (s) |',
);
console.log('|---|---|---|---|---|---|');
const methods = process.env.BENCH_METHODS?.split(',') ?? METHOD_IDS;
const profileTokens = process.env.BENCH_PROFILE_TOKENS ? Number(process.env.BENCH_PROFILE_TOKENS) : undefined;
for (const method of methods) {
  const r = await compress({
    modelDir: STORIES,
    calib,
    eval: evalFile,
    method: method as (typeof METHOD_IDS)[number],
    kvFraction: 0.5,
    profileTokens,
    allocator: 'knapsack',
    window: 512,
    calibWindows: 32,
    evalWindows: 64,
  });
  const spaces = [...new Set(r.layers.map((l) => l.keySpace))].join(', ');
  const total = Object.values(r.seconds).reduce((a, b) => a + b, 0);
  console.log(
    `| ${method} | ${spaces} | ${r.perplexity.original.toFixed(3)} → ${r.perplexity.compressed.toFixed(3)} | ` +
      `${r.kvBytesPerToken.original} → ${r.kvBytesPerToken.compressed} | ${total.toFixed(1)} | ${(r.seconds.train ?? 0).toFixed(1)} |`,
  );
}
fs.rmSync(tmp, { recursive: true, force: true });
