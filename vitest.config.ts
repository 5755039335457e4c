import { configDefaults, defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/**
 * The suites that must hold on a Redis Cluster as on a single Redis: they run
 * twice, once per project (node-redlock's "one suite, two targets"). Suites
 * left out need one server by nature: MONITOR on the wire, servers the test
 * breaks on purpose, the harness's own tests.
 */
const BOTH_TARGETS = [
  'test/store.test.ts',
  'test/chunks/basics.test.ts',
  'test/chunks/streams.test.ts',
  'test/chunks/rules.test.ts',
  'test/chunks/consume.test.ts',
  'test/chunks/raw.test.ts',
  'test/cache.test.ts',
  'test/client-kind.test.ts',
  'test/proxy.test.ts',
  'test/refs.test.ts',
  'test/ephemeral.test.ts',
  'test/reads.test.ts',
  'test/dedupe.test.ts',
  'test/dedupe-processes.test.ts',
  'test/ttl.test.ts',
  'test/scripts.test.ts',
  'test/ownership-ref.test.ts',
  'test/ownership-rules.test.ts',
  'test/ownership-scopes.test.ts',
  'test/ownership-model.test.ts',
  'test/ownership-processes.test.ts',
  'test/ownership-nodes.test.ts',
  'test/lifetimes/context.test.ts',
  'test/lifetimes/lease.test.ts',
  'test/lifetimes/static.test.ts',
  'test/lifetimes/processes.test.ts',
  'test/lifetimes/foreign.test.ts',
  'test/lifetimes/compose.test.ts',
  'test/future.test.ts',
  'test/future-lifetimes.test.ts',
  'test/lifetimes/owned.test.ts',
  'test/lifetimes/owned-model.test.ts',
  'test/lifetimes/owned-processes.test.ts',
  'test/cli/inspect.test.ts',
  'test/cli/gc.test.ts',
  'test/cli/gc-evict.test.ts',
  'test/cli/rules.test.ts',
  'test/cli/owned-members.test.ts',
  'test/cli/dedupe.test.ts',
  'test/large-objects.test.ts',
  'test/large-objects-processes.test.ts',
  'test/cli/chunks.test.ts',
];

/**
 * The chaos suite (test/chaos/, docs/chaos.md): a 3-master + 3-replica cluster per file, faults
 * under load. Only with CHAOS=1 (`npm run test:chaos`), so `npm test` is unchanged. One file at
 * a time: each starts six redis-servers and several worker processes, and times its faults.
 */
const CHAOS_PROJECT: TestProjectInlineConfiguration = {
  extends: true,
  test: {
    name: 'chaos',
    include: ['test/chaos/**/*.test.ts'],
    globalSetup: ['test/chaos/harness/global-setup.ts'],
    fileParallelism: false,
    hookTimeout: 120_000,
  },
};

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests spawn, signal and kill processes: keep each file in its own child process.
    pool: 'forks',
    // Vitest 4 replaced poolOptions.forks.{min,max}Forks with the top-level maxWorkers.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'single',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/chaos/**'],
          // Finds or starts one Redis for the run (REDIS_URL, redis-server, testcontainers, :6379).
          globalSetup: ['test/harness/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'cluster',
          include: BOTH_TARGETS,
          // Starts a local 3-master Redis Cluster from redis-server binaries.
          globalSetup: ['test/harness/global-setup-cluster.ts'],
        },
      },
      ...(process.env.CHAOS === '1' ? [CHAOS_PROJECT] : []),
    ],
  },
});
