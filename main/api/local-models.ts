/**
 * Model folders already on this machine, for the model step's pick list: the snapshots of the Hugging
 * Face hub cache and the folders recent jobs compressed. The scan reads a fixed shape
 * (`models--org--name/snapshots/<rev>/`), never recurses further, stops after a bounded number of
 * entries and skips whatever it cannot read, so a huge or half-broken cache costs little and fails
 * nothing. The environment and the home folder are parameters, so tests point it at a fake cache.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { JobSummary, LocalModel, LocalModels } from '../contract/index.ts';
import { BUNDLED_MODEL_DIR, BUNDLED_MODEL_NAME } from '../model/bundled.ts';

// the server (which may not reach main/model) lets pages read it
export { BUNDLED_MODEL_DIR };

/** Entries of each list the step shows; a cache with more models lists its newest. */
export const MAX_LISTED = 50;
/** Repositories read from the cache folder; beyond it the scan stops rather than walk a huge cache. */
const MAX_REPOS = 500;
/** Snapshots read per repository. */
const MAX_SNAPSHOTS = 20;
/** Files looked at per snapshot to find config.json and a .safetensors file. */
const MAX_FILES = 1000;

export interface HubEnv {
  HF_HOME?: string;
  HF_HUB_CACHE?: string;
}

/**
 * Where huggingface_hub keeps downloaded repositories: `$HF_HOME/hub` when HF_HOME is set, else
 * HF_HUB_CACHE, else `~/.cache/huggingface/hub` (huggingface_hub's own order).
 */
export function hubCacheDir(env: HubEnv, home: string): string {
  if (env.HF_HOME) return path.join(env.HF_HOME, 'hub');
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  return path.join(home, '.cache', 'huggingface', 'hub');
}

/** `models--org--name` → `org/name` (a repository without an org has one part); null for anything else. */
export function repoIdOf(folder: string): string | null {
  if (!folder.startsWith('models--')) return null;
  const parts = folder.slice('models--'.length).split('--');
  if (parts.some((p) => p === '')) return null;
  return parts.join('/');
}

async function entries(dir: string) {
  return fs.readdir(dir, { withFileTypes: true }).catch(() => []);
}

/** Whether a snapshot holds what inspect needs: config.json and at least one .safetensors file. */
async function loadable(dir: string): Promise<boolean> {
  const names = (await entries(dir)).slice(0, MAX_FILES).map((e) => e.name);
  // entries of a snapshot are links into blobs/: a dangling one (an interrupted download) does not count
  const present = async (name: string) => (await fs.stat(path.join(dir, name)).catch(() => null))?.isFile();
  if (!names.includes('config.json') || !(await present('config.json'))) return false;
  for (const name of names.filter((n) => n.endsWith('.safetensors'))) if (await present(name)) return true;
  return false;
}

/** The cache's loadable snapshots, newest first, at most MAX_LISTED. */
export async function scanHubCache(cache: string): Promise<LocalModel[]> {
  const repos = (await entries(cache))
    .filter((e) => e.isDirectory() && repoIdOf(e.name) !== null)
    .slice(0, MAX_REPOS);
  const found: (LocalModel & { time: number })[] = [];
  for (const repo of repos) {
    const snapshots = path.join(cache, repo.name, 'snapshots');
    for (const snap of (await entries(snapshots)).slice(0, MAX_SNAPSHOTS)) {
      if (!snap.isDirectory()) continue;
      const dir = path.join(snapshots, snap.name);
      if (!(await loadable(dir))) continue;
      const stat = await fs.stat(dir).catch(() => null);
      const time = stat?.mtimeMs ?? 0;
      found.push({
        path: dir,
        name: repoIdOf(repo.name)!,
        revision: snap.name,
        ...(stat ? { at: new Date(time).toISOString() } : {}),
        time,
      });
    }
  }
  found.sort((a, b) => b.time - a.time || a.name.localeCompare(b.name));
  return found.slice(0, MAX_LISTED).map(({ time: _time, ...m }) => m);
}

/** The model folders of recent jobs, most recent first, each once, only those that still exist. */
export async function recentModels(jobs: readonly JobSummary[]): Promise<LocalModel[]> {
  const sorted = [...jobs].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const seen = new Set<string>();
  const out: LocalModel[] = [];
  for (const job of sorted) {
    const dir = path.resolve(job.settings.model);
    if (seen.has(dir)) continue;
    seen.add(dir);
    if (!(await fs.stat(dir).catch(() => null))?.isDirectory()) continue;
    out.push({ path: dir, name: path.basename(dir), at: job.createdAt });
    if (out.length >= MAX_LISTED) break;
  }
  return out;
}

export interface ListModelsOptions {
  env: HubEnv;
  home: string;
  jobs: readonly JobSummary[];
}

export async function listLocalModels(opts: ListModelsOptions): Promise<LocalModels> {
  const cache = hubCacheDir(opts.env, opts.home);
  const exists = (await fs.stat(cache).catch(() => null))?.isDirectory() ?? false;
  const bundled = (await loadable(BUNDLED_MODEL_DIR))
    ? { path: BUNDLED_MODEL_DIR, name: `${BUNDLED_MODEL_NAME} (bundled with Rankwise)` }
    : null;
  return {
    bundled,
    hubCache: exists ? cache : null,
    huggingFace: exists ? await scanHubCache(cache) : [],
    recent: await recentModels(opts.jobs),
  };
}
