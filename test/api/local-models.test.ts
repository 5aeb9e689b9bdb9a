/**
 * Issue 14 (item 8): listModels finds the snapshots of a Hugging Face cache (a fake one in a temp folder,
 * never the real ~/.cache) and the folders recent jobs used; browser mode lists only what its roots hold;
 * the desktop grants what it lists.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PathRegistry } from '../../electron/path-registry.ts';
import { grantListedModels } from '../../electron/dialogs.ts';
import { createEngineApi } from '../../main/api/engine-api.ts';
import { BUNDLED_MODEL_DIR } from '../../main/model/bundled.ts';
import { hubCacheDir, listLocalModels, repoIdOf, scanHubCache } from '../../main/api/local-models.ts';
import type { JobSummary } from '../../main/contract/index.ts';
import { PathGuard, visibleModels } from '../../main/server/paths.ts';
import { tempDir } from '../helpers/paths.ts';

const tmp = tempDir('rankwise-hf-');
afterAll(() => tmp.cleanup());

/** A snapshot laid out as huggingface_hub lays it out: files are links into the repository's blobs/. */
function snapshot(cache: string, repo: string, rev: string, files: string[], mtime: number): string {
  const repoDir = path.join(cache, `models--${repo.replace('/', '--')}`);
  const dir = path.join(repoDir, 'snapshots', rev);
  fs.mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) {
    const blob = path.join(repoDir, 'blobs', `${rev}-${f}`);
    fs.writeFileSync(blob, f === 'config.json' ? '{}' : 'x');
    fs.symlinkSync(path.relative(dir, blob), path.join(dir, f));
  }
  fs.utimesSync(dir, mtime, mtime);
  return dir;
}

const HF_HOME = path.join(tmp.dir, 'hf');
const CACHE = path.join(HF_HOME, 'hub');
const OLD = snapshot(CACHE, 'org/tiny', 'aaa111', ['config.json', 'model.safetensors'], 1_000_000);
const NEW = snapshot(
  CACHE,
  'org/tiny',
  'bbb222',
  ['config.json', 'model-00001-of-00002.safetensors'],
  2_000_000,
);
const SOLO = snapshot(CACHE, 'gpt2', 'ccc333', ['config.json', 'model.safetensors'], 1_500_000);
// not loadable: no weights, no config, a dangling link (an interrupted download)
snapshot(CACHE, 'org/noweights', 'ddd444', ['config.json', 'pytorch_model.bin'], 3_000_000);
snapshot(CACHE, 'org/noconfig', 'eee555', ['model.safetensors'], 3_000_000);
const broken = snapshot(CACHE, 'org/broken', 'fff666', ['config.json', 'model.safetensors'], 3_000_000);
fs.rmSync(path.join(CACHE, 'models--org--broken', 'blobs', 'fff666-model.safetensors'));
// datasets and stray files are not models
fs.mkdirSync(path.join(CACHE, 'datasets--org--text', 'snapshots', 'x'), { recursive: true });
fs.writeFileSync(path.join(CACHE, 'version.txt'), '1');

const RECENT = path.join(tmp.dir, 'models', 'stories');
fs.mkdirSync(RECENT, { recursive: true });

function job(id: string, model: string, createdAt: string): JobSummary {
  return {
    id,
    kind: 'compress',
    state: 'done',
    settings: {
      model,
      calib: { builtin: 'demo-calibration' },
      eval: { builtin: 'demo-evaluation' },
      method: 'kqsvd',
    },
    createdAt,
  };
}

const BUNDLED = { path: BUNDLED_MODEL_DIR, name: 'stories260K (bundled with Rankwise)' };

describe('the Hugging Face cache folder', () => {
  it('follows HF_HOME, then HF_HUB_CACHE, then ~/.cache/huggingface/hub', () => {
    expect(hubCacheDir({ HF_HOME: '/h', HF_HUB_CACHE: '/c' }, '/home/me')).toBe(path.join('/h', 'hub'));
    expect(hubCacheDir({ HF_HUB_CACHE: '/c' }, '/home/me')).toBe('/c');
    expect(hubCacheDir({}, '/home/me')).toBe(path.join('/home/me', '.cache', 'huggingface', 'hub'));
  });

  it('names repositories as the hub does', () => {
    expect(repoIdOf('models--meta-llama--Llama-3.2-1B')).toBe('meta-llama/Llama-3.2-1B');
    expect(repoIdOf('models--gpt2')).toBe('gpt2');
    expect(repoIdOf('datasets--org--x')).toBeNull();
    expect(repoIdOf('models--org--')).toBeNull();
  });
});

describe('scanHubCache', () => {
  it('lists loadable snapshots, newest first, as org/name and revision', async () => {
    const found = await scanHubCache(CACHE);
    expect(found.map((m) => [m.name, m.revision, m.path])).toEqual([
      ['org/tiny', 'bbb222', NEW],
      ['gpt2', 'ccc333', SOLO],
      ['org/tiny', 'aaa111', OLD],
    ]);
    expect(found.some((m) => m.path === broken)).toBe(false);
  });

  it('answers an empty list for a missing or unreadable cache', async () => {
    expect(await scanHubCache(path.join(tmp.dir, 'absent'))).toEqual([]);
  });
});

describe('listModels', () => {
  it('the engine scans the cache its env names and lists recent jobs’ folders once, newest first', async () => {
    const models = await listLocalModels({
      env: { HF_HOME },
      home: path.join(tmp.dir, 'nohome'),
      jobs: [
        job('a', RECENT, '2026-01-01T00:00:00Z'),
        job('b', RECENT, '2026-02-01T00:00:00Z'),
        job('c', path.join(tmp.dir, 'gone'), '2026-03-01T00:00:00Z'),
      ],
    });
    expect(models.hubCache).toBe(CACHE);
    expect(models.huggingFace).toHaveLength(3);
    expect(models.recent).toEqual([{ path: RECENT, name: 'stories', at: '2026-02-01T00:00:00Z' }]);
  });

  it('is a method of the engine API, with the cache injected', async () => {
    const dir = path.join(tmp.dir, 'engine');
    const api = createEngineApi({ dir, env: { HF_HOME }, home: path.join(tmp.dir, 'nohome') });
    try {
      const models = await api.listModels();
      expect(models.huggingFace.map((m) => m.path)).toEqual([NEW, SOLO, OLD]);
      expect(models.recent).toEqual([]);
      const none = createEngineApi({ dir, env: {}, home: path.join(tmp.dir, 'nohome') });
      expect(await none.listModels()).toEqual({
        bundled: BUNDLED,
        hubCache: null,
        huggingFace: [],
        recent: [],
      });
      await none.close();
    } finally {
      await api.close();
    }
  });

  it('lists the bundled stories260K first, a model inspect can open', async () => {
    const models = await listLocalModels({ env: {}, home: path.join(tmp.dir, 'nohome'), jobs: [] });
    expect(models.bundled).toEqual(BUNDLED);
    expect(fs.existsSync(path.join(BUNDLED_MODEL_DIR, 'config.json'))).toBe(true);
  });

  it('browser mode reads the bundled model whatever the roots, and never writes there', async () => {
    const models = await listLocalModels({ env: {}, home: tmp.dir, jobs: [] });
    const guard = await PathGuard.create([path.join(tmp.dir, 'models')], [BUNDLED_MODEL_DIR]);
    try {
      const shown = await visibleModels(guard, models);
      expect(shown.bundled?.path).toBe(fs.realpathSync(BUNDLED_MODEL_DIR));
      expect(await guard.check(path.join(BUNDLED_MODEL_DIR, 'config.json'))).toBe(
        fs.realpathSync(path.join(BUNDLED_MODEL_DIR, 'config.json')),
      );
      await expect(guard.checkWritable(path.join(BUNDLED_MODEL_DIR, 'export'))).rejects.toThrow(
        /outside the folders this server may use/,
      );
      await expect(guard.prepareWrite(path.join(BUNDLED_MODEL_DIR, 'export'))).rejects.toThrow(
        /outside the folders this server may use/,
      );
      // its neighbours stay out of reach
      await expect(guard.check(path.join(BUNDLED_MODEL_DIR, '..', 'demo', 'recipe.json'))).rejects.toThrow(
        /outside the folders this server may use/,
      );
      // a guard without it (the default) does not read it
      const plain = await PathGuard.create([path.join(tmp.dir, 'models')]);
      expect((await visibleModels(plain, models)).bundled).toBeNull();
      await plain.close();
    } finally {
      await guard.close();
    }
  });

  it('browser mode lists only folders inside the roots and counts the rest', async () => {
    const models = await listLocalModels({ env: { HF_HOME }, home: tmp.dir, jobs: [job('a', RECENT, 'x')] });
    const guard = await PathGuard.create([path.join(tmp.dir, 'models')]);
    try {
      const shown = await visibleModels(guard, models);
      expect(shown.huggingFace).toEqual([]);
      expect(shown.recent.map((m) => m.path)).toEqual([fs.realpathSync(RECENT)]);
      expect(shown.hidden).toBe(3);
      const wide = await visibleModels(await PathGuard.create([tmp.dir]), models);
      expect(wide.huggingFace).toHaveLength(3);
      expect(wide.hidden).toBe(0);
    } finally {
      await guard.close();
    }
  });

  it('the desktop grants what it lists for reading, and nothing for writing', async () => {
    const registry = new PathRegistry();
    const models = await listLocalModels({ env: { HF_HOME }, home: tmp.dir, jobs: [] });
    const listed = await grantListedModels({ listModels: async () => models }, registry)();
    expect(listed.huggingFace).toHaveLength(3);
    expect(listed.bundled).not.toBeNull();
    expect(registry.allows(path.join(BUNDLED_MODEL_DIR, 'config.json'), 'read')).toBe(true);
    expect(registry.allows(BUNDLED_MODEL_DIR, 'write')).toBe(false);
    expect(registry.allows(NEW, 'read')).toBe(true);
    expect(registry.allows(NEW, 'write')).toBe(false);
    expect(registry.allows(path.join(tmp.dir, 'models'), 'read')).toBe(false);
  });
});
