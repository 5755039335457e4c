import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Finds or starts one Redis for the run; tests get its URL with inject('redisUrl').
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests spawn, signal and kill processes: keep each file in its own child process.
    pool: 'forks',
    // Vitest 4 replaced poolOptions.forks.{min,max}Forks with the top-level maxWorkers.
    maxWorkers: 2,
  },
});
