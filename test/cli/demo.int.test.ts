/**
 * `npm run demo` as a user runs it (`node bin/rankwise.mjs demo`, from a folder of their own): it compresses
 * the bundled stories260K on TinyStories text and prints a real perplexity change.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { DEMO_MODEL_DIR } from '../../main/cli/commands/demo.ts';
import { REPO_ROOT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-demo-');
afterAll(() => tmp.cleanup());

/**
 * stories260K's perplexity on TinyStories validation text is about 4.2 with 512-token windows
 * (../shared/testdata/README.md) and a little higher with the demo's 128-token windows.
 */
const PLAUSIBLE = [3, 8] as const;

function demo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'rankwise.mjs'), 'demo', ...args], {
      cwd: tmp.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('rankwise demo', () => {
  it('compresses the bundled stories260K and prints a real perplexity change', async () => {
    const r = await demo(['--quiet']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('stories260K');
    expect(r.stdout).toContain(`model               ${DEMO_MODEL_DIR}`);
    expect(r.stdout).toMatch(/parameters\s+260,032/);
    const [, before, after] = /perplexity\s+(\d+\.\d+) → (\d+\.\d+)/.exec(r.stdout)!;
    const [original, compressed] = [Number(before), Number(after)];
    expect(original).toBeGreaterThan(PLAUSIBLE[0]);
    expect(original).toBeLessThan(PLAUSIBLE[1]);
    expect(compressed).not.toBe(original);
    // a smaller cache costs some perplexity, not all of it
    expect(compressed).toBeGreaterThan(original);
    expect(compressed).toBeLessThan(2 * original);
    // the default folder, in the current one
    const out = path.join(tmp.dir, 'rankwise-demo');
    expect(r.stdout).toContain(`Open the report: ${path.join(out, 'export', 'rankwise-report.html')}`);
    expect(fs.existsSync(path.join(out, 'export', 'onnx', 'model.onnx'))).toBe(true);
  }, 60_000);

  it('--json runs again in its own folder and reports the same job settings', async () => {
    const r = await demo(['--json', '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.model).toBe(DEMO_MODEL_DIR);
    expect(doc.compress.model).toBe(DEMO_MODEL_DIR);
    expect(doc.info).toMatchObject({ layers: 5, kvHeads: 4, headDim: 8 });
    const { original, compressed } = doc.compress.perplexity;
    expect(Number.isFinite(original) && Number.isFinite(compressed)).toBe(true);
    expect(original).toBeCloseTo(doc.eval.perplexity, 6);
    expect(original).toBeGreaterThan(PLAUSIBLE[0]);
    expect(original).toBeLessThan(PLAUSIBLE[1]);
    expect(compressed).not.toBe(original);
    expect(doc.compress.kv_fraction).toBeLessThan(1);
    expect(doc.export.verification.passed).toBe(true);
  }, 60_000);
});
