/** `rankwise demo --out D` replaces only what the demo itself wrote in D/model. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { RankwiseError } from '../../main/core/errors.ts';
import { ensureDemoModel } from '../../main/cli/commands/demo.ts';
import { tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('the demo model folder', () => {
  it("refuses a folder it did not write and leaves the user's files alone", async () => {
    const dir = path.join(tmp.dir, 'mine', 'model');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'precious');
    const err = await ensureDemoModel(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RankwiseError);
    expect((err as RankwiseError).kind).toBe('bad-input');
    expect((err as Error).message).toContain(dir);
    expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('precious');
  });

  it('writes a new folder, reuses it, and replaces its own folder from an older recipe', async () => {
    const dir = path.join(tmp.dir, 'demo', 'model');
    expect(await ensureDemoModel(dir)).toEqual({ generated: true });
    expect(await ensureDemoModel(dir)).toEqual({ generated: false });
    fs.writeFileSync(path.join(dir, '.rankwise-recipe'), 'an older recipe');
    expect(await ensureDemoModel(dir)).toEqual({ generated: true });
    expect(fs.existsSync(path.join(dir, 'config.json'))).toBe(true);
  });
});
