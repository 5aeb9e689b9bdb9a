import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { builtinModules } from 'node:module';

// Every Node built-in, bare and with the node: prefix: the renderer may import none of them.
const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

// Which engine folders each folder of main/ may import. Lower layers never import higher ones, so
// there are no cycles between folders.
const LOWER = {
  core: [],
  contract: ['core'],
  model: ['core', 'contract'],
  runtime: ['core', 'contract', 'model'],
  data: ['core', 'contract', 'model'],
  methods: ['core', 'contract', 'model', 'runtime', 'native-kernels'],
  export: ['core', 'contract', 'model', 'runtime', 'methods', 'data'],
  generate: ['core', 'contract', 'model', 'runtime', 'methods', 'data', 'export'],
  jobs: ['core', 'contract', 'model', 'runtime', 'methods', 'data', 'export', 'generate'],
  api: ['core', 'contract', 'model', 'runtime', 'methods', 'data', 'export', 'generate', 'jobs'],
  server: ['core', 'contract', 'api'],
  cli: [
    'core',
    'contract',
    'model',
    'runtime',
    'methods',
    'data',
    'export',
    'generate',
    'jobs',
    'api',
    'server',
  ],
};
const ENGINE_FOLDERS = [...Object.keys(LOWER), 'native-kernels'];

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
  // The engine's layers, lowest first: a folder may import only the folders listed for it (and itself).
  // core/ and contract/ import nothing of the app, so the renderer may use their values.
  ...Object.entries(LOWER).map(([folder, allowed]) => ({
    files: [`main/${folder}/**/*.ts`],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'electron', message: 'main/ is plain Node: electron is imported only under electron/.' },
            ...(folder === 'core' || folder === 'contract'
              ? nodeBuiltins.map((name) => ({ name, message: `main/${folder} runs in the renderer too.` }))
              : []),
          ],
          patterns: [
            { group: ['electron/*'], message: 'main/ is plain Node.' },
            {
              regex: `^(\\.\\./)+(${ENGINE_FOLDERS.filter((f) => f !== folder && !allowed.includes(f)).join('|')})(/|$)`,
              message: `main/${folder} may import only ${allowed.join(', ') || 'itself'} (docs/ARCHITECTURE.md, layers).`,
            },
          ],
        },
      ],
    },
  })),
  {
    // The kernels are a library of their own: nothing of the app.
    files: ['native-kernels/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [{ regex: '^\\.\\./main(/|$)', message: 'native-kernels/ imports nothing of the app.' }],
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
              regex: '(^|/)main/(?!core/|contract/)',
              allowTypeImports: true,
              message:
                'The renderer imports only types from main/, values only from main/core and main/contract.',
            },
          ],
        },
      ],
    },
  },
);
