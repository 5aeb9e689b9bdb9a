import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // onnxruntime sessions and real checkpoints make some tests take seconds on 2 cores
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { XDG_CACHE_HOME: '.cache/xdg' },
  },
});
