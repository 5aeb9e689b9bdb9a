/**
 * A cancelled export job cleans up only what Rankwise made: the user's own `<out>.partial` folder beside
 * the destination survives, and no marked temporary folder is left.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { createEngineApi } from '../../main/api/engine-api.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';
import { settle } from '../helpers/jobs.ts';

const tmp = tempDir();
const api = createEngineApi({ dir: path.join(tmp.dir, 'engine') });
afterAll(async () => {
  await api.close();
  tmp.cleanup();
});

describe('export job clean-up', () => {
  it("a cancelled export leaves the user's <out>.partial alone and nothing of its own", async () => {
    const job = await api.startJob({
      model: STORIES_DIR,
      calib: { path: TINYSTORIES_TEXT },
      eval: { path: TINYSTORIES_TEXT },
      method: 'kqsvd',
      ranks: { k: 4, v: 4 },
      keySpace: 'pre-rope',
      window: 64,
      calibWindows: 2,
      evalWindows: 1,
    });
    expect((await settle(api, job.id)).at(-1)).toMatchObject({ state: 'done' });

    const out = path.join(tmp.dir, 'export');
    fs.mkdirSync(`${out}.partial`);
    fs.writeFileSync(path.join(`${out}.partial`, 'notes.txt'), 'precious');
    const exp = await api.exportJob({ jobId: job.id, out });
    let asked = false;
    const events = await settle(api, exp.id, (e) => {
      if (e.type === 'progress' && e.stage.startsWith('export') && !asked) {
        asked = true;
        void api.cancelJob(exp.id);
      }
    });
    expect(events.at(-1)).toMatchObject({ state: 'cancelled' });
    expect(fs.readFileSync(path.join(`${out}.partial`, 'notes.txt'), 'utf8')).toBe('precious');
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp.dir).filter((n) => n.startsWith('export.rankwise-'))).toEqual([]);
  });
});
