/**
 * Path strings in the renderer, which has no `node:path`: the engine may run on Windows, so the separator
 * is read from the path itself.
 */

function separatorOf(p: string): '/' | '\\' {
  return p.includes('\\') && !p.includes('/') ? '\\' : '/';
}

function trimEnd(p: string): string {
  const t = p.replace(/[\\/]+$/, '');
  return t === '' ? p.slice(0, 1) : t;
}

export function baseName(p: string): string {
  const t = trimEnd(p);
  const i = Math.max(t.lastIndexOf('/'), t.lastIndexOf('\\'));
  return i < 0 ? t : t.slice(i + 1);
}

export function dirName(p: string): string {
  const t = trimEnd(p);
  const i = Math.max(t.lastIndexOf('/'), t.lastIndexOf('\\'));
  if (i < 0) return '.';
  return i === 0 ? t.slice(0, 1) : t.slice(0, i);
}

export function joinPath(dir: string, name: string): string {
  const sep = separatorOf(dir);
  return /[\\/]$/.test(dir) ? `${dir}${name}` : `${dir}${sep}${name}`;
}

/** Beside the model, named after it and the method: `…/llama-7b-kqsvd`. */
export function suggestExportPath(modelDir: string, method: string): string {
  return joinPath(dirName(modelDir), `${baseName(modelDir)}-${method}`);
}
