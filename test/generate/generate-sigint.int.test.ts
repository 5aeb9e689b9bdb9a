/** Ctrl-C during `rankwise generate` stops it cleanly: exit 0, what was generated and its figures printed. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { REPO_ROOT, STORIES_DIR, tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('rankwise generate and Ctrl-C', () => {
  it('stops between tokens, prints the figures, and exits 0', async () => {
    const prompts = path.join(tmp.dir, 'prompts.txt');
    fs.writeFileSync(prompts, 'Once upon a time\n'.repeat(300));
    const child = spawn(
      process.execPath,
      [
        path.join(REPO_ROOT, 'bin', 'rankwise.mjs'),
        'generate',
        STORIES_DIR,
        '--prompts',
        prompts,
        '--max-new-tokens',
        '400',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
    child.stdout.on('data', (d: Buffer) => {
      stdout += String(d);
      // well into the run: the third prompt is streaming
      if (!interrupted && stdout.includes('[prompt 3]')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(interrupted).toBe(true);
    expect(code).toBe(0);
    expect(stderr).toBe('rankwise generate: stopped (Ctrl-C)\n');
    expect(stdout).not.toContain('[prompt 300]');
    expect(stdout).toMatch(/generated\s+\d+ tokens \(stopped by request\)/);
    expect(stdout).toMatch(/KV cache held/);
  });
});
