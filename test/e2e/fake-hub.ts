import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A Hugging Face hub cache as huggingface_hub lays it out: `hub/models--org--name/blobs/<sha256>` holds
 * the files and `snapshots/<rev>/<file>` are relative links to them, so the scan and the path guard meet
 * links as they do in a real cache. Answers the snapshot folder.
 */
export function writeFakeHubCache(hfHome: string, repoId: string, source: string, files: string[]): string {
  const repo = path.join(hfHome, 'hub', `models--${repoId.replace('/', '--')}`);
  const revision = crypto.createHash('sha1').update(repoId).digest('hex');
  const snapshot = path.join(repo, 'snapshots', revision);
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  fs.mkdirSync(snapshot, { recursive: true });
  fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'refs', 'main'), revision);
  for (const name of files) {
    const bytes = fs.readFileSync(path.join(source, name));
    const blob = crypto.createHash('sha256').update(bytes).digest('hex');
    fs.writeFileSync(path.join(repo, 'blobs', blob), bytes);
    fs.symlinkSync(path.join('..', '..', 'blobs', blob), path.join(snapshot, name));
  }
  return snapshot;
}
