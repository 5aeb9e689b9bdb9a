import react from '@vitejs/plugin-react';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const NODE_BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
const ENGINE_ONLY = /^(electron|onnxruntime-[a-z]+|rankwise-native)(\/|$)/;

/**
 * Fails the build when the renderer's module graph reaches Node, Electron or the engine's native code.
 * Vite would otherwise swap a Node built-in for an empty stub and only warn, and the page would break
 * at run time instead.
 */
export function rendererBoundary(): Plugin {
  return {
    name: 'rankwise-renderer-boundary',
    enforce: 'pre',
    resolveId(id, importer) {
      if (NODE_BUILTINS.has(id) || id.startsWith('node:') || ENGINE_ONLY.test(id)) {
        this.error(
          `${importer ?? 'the renderer'} imports '${id}': the renderer reaches the engine only through RankwiseApi`,
        );
      }
      return null;
    },
  };
}

/**
 * The renderer bundle. `base: './'` because the same files are served from app://rankwise/ by Electron
 * and from http://127.0.0.1:PORT/ by browser mode: only relative asset URLs work in both.
 */
export default defineConfig({
  root: here('./renderer'),
  base: './',
  plugins: [rendererBoundary(), react()],
  build: {
    outDir: here('./dist/renderer'),
    // outDir lies outside root, where Vite will not empty it unless told to
    emptyOutDir: true,
    // the CSP allows scripts from 'self' only: no inline module preload polyfill
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1024,
  },
});
