/**
 * The desktop's `choosePath` and `browse`: native dialogs whose answers are the only paths the renderer
 * may use afterwards (recorded in the PathRegistry), and folder listings confined to the folders picked.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { OpenDialogOptions, OpenDialogReturnValue } from 'electron';
import type {
  DirectoryListing,
  HostAnswers,
  LocalModels,
  PathPurpose,
  RankwiseApi,
} from '../main/contract/index.ts';
import { badInput } from '../main/core/errors.ts';
import type { PathRegistry } from './path-registry.ts';

/** `dialog.showOpenDialog`, bound by the caller to the window it should be modal to. */
export type OpenDialog = (options: OpenDialogOptions) => Promise<OpenDialogReturnValue>;

export const DATA_EXTENSIONS = ['txt', 'jsonl', 'json', 'gz', 'parquet'] as const;

export const DIALOG_OPTIONS: Record<PathPurpose, OpenDialogOptions> = {
  model: {
    title: 'Choose a model folder',
    message: 'The folder that holds config.json and the .safetensors weights',
    properties: ['openDirectory', 'dontAddToRecent'],
  },
  data: {
    title: 'Choose a text file',
    properties: ['openFile', 'dontAddToRecent'],
    filters: [{ name: 'Text data', extensions: [...DATA_EXTENSIONS] }],
  },
  export: {
    title: 'Choose a folder for the compressed model',
    buttonLabel: 'Export here',
    properties: ['openDirectory', 'createDirectory', 'promptToCreate', 'dontAddToRecent'],
  },
};

/** The desktop's answers to the manifest's host methods. */
export type DesktopPaths = HostAnswers;

export function createDesktopPaths(openDialog: OpenDialog, registry: PathRegistry): DesktopPaths {
  return {
    async choosePath(purpose: PathPurpose): Promise<string | null> {
      const options = DIALOG_OPTIONS[purpose];
      if (!options) throw badInput(`choosePath: unknown purpose '${String(purpose)}'`);
      const result = await openDialog(options);
      const chosen = result.canceled ? undefined : result.filePaths[0];
      if (!chosen) return null;
      return registry.add(chosen, purpose);
    },

    async browse(dir?: string): Promise<DirectoryListing> {
      const target = dir ?? registry.folders()[0];
      if (target === undefined) throw badInput('browse: choose a folder first');
      if (!registry.allows(target, 'read')) {
        throw badInput('is not inside a folder chosen in this session', target);
      }
      const resolved = path.resolve(target);
      let dirents;
      try {
        dirents = await fs.readdir(resolved, { withFileTypes: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') throw badInput('is not a folder', resolved);
        throw e;
      }
      // hidden entries are left out, as the engine's browse (browser mode) does
      const visible = dirents.filter((d) => !d.name.startsWith('.'));
      const entries = await Promise.all(visible.map((d) => describe(resolved, d.name)));
      const listed = entries
        .filter((e): e is DirectoryListing['entries'][number] => e !== null)
        .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'dir' ? -1 : 1));
      const parent = path.dirname(resolved);
      return {
        dir: resolved,
        // the listing stops at the picked folder: its parent was never chosen
        parent: parent !== resolved && registry.allows(parent, 'read') ? parent : null,
        entries: listed,
      };
    },
  };
}

/**
 * listModels on the desktop: each folder the engine found (a Hugging Face cache snapshot, a recent job's
 * model) is granted for reading as a dialog pick would be, so choosing it from the list can be inspected.
 * The folders come from the engine's own scan, never from the renderer, so a compromised page gains
 * nothing it could name; a folder that no longer resolves is left out.
 */
export function grantListedModels(engine: Pick<RankwiseApi, 'listModels'>, registry: PathRegistry) {
  return async (): Promise<LocalModels> => {
    const found = await engine.listModels();
    const grant = (list: LocalModels['recent']) =>
      list.flatMap((m) => {
        try {
          return [{ ...m, path: registry.add(m.path, 'model') }];
        } catch {
          return [];
        }
      });
    const [bundled = null] = found.bundled ? grant([found.bundled]) : [];
    return { ...found, bundled, huggingFace: grant(found.huggingFace), recent: grant(found.recent) };
  };
}

async function describe(dir: string, name: string): Promise<DirectoryListing['entries'][number] | null> {
  const full = path.join(dir, name);
  try {
    // stat, not lstat: a symlinked snapshot (the Hugging Face cache layout) should list as what it points to
    const st = await fs.stat(full);
    if (st.isDirectory()) return { name, path: full, kind: 'dir' };
    if (st.isFile()) return { name, path: full, kind: 'file', bytes: st.size };
    return null;
  } catch {
    // a dangling link or a file removed while listing
    return null;
  }
}
