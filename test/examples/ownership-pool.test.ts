/**
 * examples/ownership-pool.ts: a worker_threads pool reads a borrowed array,
 * every borrow ends with its task (also a task that throws), and the owner
 * drops it.
 */
import { BorrowedError, ENV_NAMESPACE, ENV_URL, borrow, drop, toRef } from '../../src/index.js';
import { Pool, sumSlice } from '../../examples/ownership-pool.js';
import { runChild } from '../harness/child.js';
import { expect, objectLeftovers, test } from '../harness/ownership.js';

test('the example, run on its own, sums a borrowed array in 4 workers and drops it', { timeout: 60_000 }, async ({ redisUrl, namespace, redis }) => {
  const out = await runChild('examples/ownership-pool.ts', {
    env: { [ENV_URL]: redisUrl, [ENV_NAMESPACE]: namespace },
    timeoutMs: 50_000,
  });
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  const n = 1_000_000;
  expect(out.stdout).toContain(`8 tasks on 4 workers: sum of ${n} values = ${(n * (n - 1)) / 2}`);
  expect(out.stdout).toContain('owner dropped: every borrow had ended');
  expect(await objectLeftovers(redis, namespace)).toEqual([]);
});

test('a task that throws in its worker still ends its borrow: the owner drops once every task settled', { timeout: 60_000 }, async ({ store, redisUrl, namespace }) => {
  const pool = new Pool(2, { url: redisUrl, namespace, store: store.name });
  try {
    const owned = await store.ownedProxy(Float64Array.from({ length: 100 }, (_, i) => i));
    const results = await Promise.allSettled([
      sumSlice(owned, pool, { start: 0, end: 10 }),
      sumSlice(owned, pool, { start: 50, end: 500 }), // out of range: the worker throws
      sumSlice(owned, pool, { start: 90, end: 100 }),
    ]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 45 });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { message: 'slice 50..500 is out of range of 100 values' } });
    expect(results[2]).toEqual({ status: 'fulfilled', value: 945 });
    // Would throw BorrowedError if the failed task's borrow were still held.
    await expect(drop(owned)).resolves.toBeUndefined();
  } finally {
    await pool.close();
  }
});

test('without submit, a borrow sent to a task that throws keeps the owner from dropping', { timeout: 60_000 }, async ({ store, redisUrl, namespace }) => {
  // The contrast: lend the borrow by hand (toRef through JSON) and nobody ends it.
  const pool = new Pool(1, { url: redisUrl, namespace, store: store.name });
  try {
    const owned = await store.ownedProxy(Float64Array.from({ length: 100 }, (_, i) => i));
    const shared = await borrow(owned);
    await expect(pool.run({ ref: toRef(shared), start: 50, end: 500 })).rejects.toThrow(/out of range/);
    await expect(drop(owned)).rejects.toBeInstanceOf(BorrowedError);
  } finally {
    await pool.close(); // the worker's store closes and releases the borrow it took over
  }
});
