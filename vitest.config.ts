import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // .tsx: the renderer's component tests (each opts into jsdom with a per-file environment comment)
    include: ['test/**/*.test.{ts,tsx}'],
    environment: 'node',
    // onnxruntime sessions and real checkpoints make some tests take seconds on 2 cores
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { XDG_CACHE_HOME: '.cache/xdg' },
  },
});
