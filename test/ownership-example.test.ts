/**
 * examples/ownership-pool.ts runs: a worker_threads pool reads a borrowed
 * array, every borrow ends with its task, and the owner drops it.
 */
import { ENV_NAMESPACE, ENV_URL } from '../src/index.js';
import { runChild } from './harness/child.js';
import { expect, namespaceKeys, test } from './harness/ownership.js';

test('the worker-pool example sums a borrowed array in 4 workers and drops it', { timeout: 60_000 }, async ({ redisUrl, namespace, redis }) => {
  const out = await runChild('examples/ownership-pool.ts', {
    env: { [ENV_URL]: redisUrl, [ENV_NAMESPACE]: namespace },
    timeoutMs: 50_000,
  });
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  const n = 1_000_000;
  expect(out.stdout).toContain(`8 tasks on 4 workers: sum of ${n} values = ${(n * (n - 1)) / 2}`);
  expect(out.stdout).toContain('owner dropped: every borrow had ended');
  expect(await namespaceKeys(redis, namespace)).toEqual([]);
});
