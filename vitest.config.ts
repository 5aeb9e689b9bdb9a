import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';

// Three projects, told apart by where a test file lives and what it is called, so a new file needs no edit
// here (docs/ARCHITECTURE.md §8):
//  - e2e: everything under test/e2e/ (the wizard in chromium against a real server);
//  - integration: files named *.int.test.ts(x): they build bundles, start servers or child processes, run
//    whole jobs or exports, or otherwise take more than a couple of seconds;
//  - unit: every other test file; `npm run test:unit` stays under a minute on two cores.
const TESTS = 'test/**/*.test.{ts,tsx}';
const INTEGRATION = 'test/**/*.int.test.{ts,tsx}';
const E2E = 'test/e2e/**';

export default defineConfig({
  test: {
    environment: 'node',
    // onnxruntime sessions and real checkpoints make some tests take seconds on 2 cores
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { XDG_CACHE_HOME: '.cache/xdg', RANKWISE_HOME: '.cache/rankwise-home' },
    projects: [
      {
        extends: true,
        // .tsx: the renderer's component tests (each opts into jsdom with a per-file environment comment)
        test: {
          name: 'unit',
          include: [TESTS],
          exclude: [...configDefaults.exclude, INTEGRATION, E2E],
          // vitest leaves one core to itself by default, which on two cores runs these short files one at a
          // time; they are independent and light, so every core takes files (37 s instead of 57 s here)
          maxWorkers: availableParallelism(),
          // projects with their own worker counts run one after the other: unit, integration, e2e
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: [INTEGRATION],
          exclude: [...configDefaults.exclude, E2E],
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: { name: 'e2e', include: [`${E2E}/*.test.{ts,tsx}`], sequence: { groupOrder: 2 } },
      },
    ],
  },
});
