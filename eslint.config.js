import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { builtinModules } from 'node:module';

// Every Node built-in, bare and with the node: prefix: the renderer may import none of them.
const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'dist/**',
      '.cache/**',
      'native-kernels/build/**',
      'coverage/**',
      '.scratch/**',
      'rankwise-demo/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The engine runs in plain Node (CLI, server, worker threads): Electron must never be pulled in.
    files: ['main/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'electron', message: 'main/ is plain Node: electron is imported only under electron/.' },
          ],
          patterns: [{ group: ['electron/*'], message: 'main/ is plain Node.' }],
        },
      ],
    },
  },
  {
    // The renderer talks to the engine only through RankwiseApi: no Node, no engine code, types only.
    files: ['renderer/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'The renderer never touches Node.' })),
            { name: 'electron', message: 'The renderer reaches Electron only through window.rankwise.' },
            { name: 'onnxruntime-node', message: 'The renderer never runs the engine.' },
          ],
          patterns: [
            {
              group: ['**/main/**', '../main', '../../main'],
              allowTypeImports: true,
              message: 'The renderer imports only types from main/.',
            },
          ],
        },
      ],
    },
  },
);
