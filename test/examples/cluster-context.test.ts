/**
 * examples/cluster-context.ts: node:cluster workers share one array under a
 * ContextLifetime that the primary closes. The primary runs in this test's
 * process; the workers are real processes.
 */
import { ENV_NAMESPACE, ENV_URL, LifetimeEndedError } from '../../src/index.js';
import { runPrimary } from '../../examples/cluster-context.js';
import { runChild } from '../harness/child.js';
import { expect, findLeakedKeys, test } from '../harness/store-fixture.js';

const N = 100_000;

test('workers resolve the shared array by ref and add their results to the lifetime', { timeout: 60_000 }, async ({ redisUrl, namespace }) => {
  const report = await runPrimary({ url: redisUrl, namespace, workers: 2, n: N });
  expect(report.total).toBe((N * (N - 1)) / 2);
  // The array and one result per worker, all made under the lifetime (their keys share its id).
  expect(report.keys).toHaveLength(3);
  for (const key of report.keys) expect(key.startsWith(`${report.lifetimeId}~`)).toBe(true);
  expect(report.existedBeforeClose).toEqual([true, true, true]);
});

test('closing the lifetime in the primary evicts the array and every worker\'s result', { timeout: 60_000 }, async ({ redisUrl, namespace, store, redis }) => {
  const report = await runPrimary({ url: redisUrl, namespace, workers: 2, n: N });
  expect(report.existsAfterClose).toEqual([false, false, false]);
  for (const key of report.keys) expect(await store.exists(key)).toBe(false);
  // What is left is the lifetime's ended marker, which expires.
  expect(await findLeakedKeys(redis, namespace)).toEqual([]);
});

test('a worker that adds to the lifetime after the close gets LifetimeEndedError', { timeout: 60_000 }, async ({ redisUrl, namespace }) => {
  const report = await runPrimary({ url: redisUrl, namespace, workers: 2, n: N });
  expect(report.lateAdds).toHaveLength(2);
  for (const err of report.lateAdds) {
    expect(err).toBeInstanceOf(LifetimeEndedError);
    expect(err?.message).toContain(report.lifetimeId);
  }
});

test('the example runs on its own, as its README section says', { timeout: 60_000 }, async ({ redisUrl, namespace }) => {
  const out = await runChild('examples/cluster-context.ts', {
    env: { [ENV_URL]: redisUrl, [ENV_NAMESPACE]: namespace },
    timeoutMs: 50_000,
  });
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  expect(out.stdout).toContain(`2 workers summed the shared array: ${(1_000_000 * 999_999) / 2}`);
  expect(out.stdout).toMatch(/held 3 objects; after close, left: 0/);
  expect(out.stdout).toMatch(/a worker adding after the close: LifetimeEndedError: lifetime \S+ \("cluster-example"\) was closed/);
});
