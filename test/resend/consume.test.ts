/**
 * An ephemeral consume whose reply is lost (the reply-dropping proxy: the
 * consume runs, its reply is thrown away, the connection is cut) still gives
 * its value exactly once: to ioredis's automatic resend, and to the
 * application resolving the same proxy again after giving up, whatever the
 * tombstone's TTL. Another proxy of the same ref is another consumer.
 * Single Redis only (the proxy stands in front of one server).
 */
import { ProxyResolveMissingKeyError, RedisConnector, RedisOperationError, Store, fromRef, resolve, toRef, type Proxy } from '../../src/index.js';
import { waitUntil } from '../lifetimes/util.js';
import { deleteNamespaceKeys, describe, expect, test } from '../harness/fixtures.js';
import { startReplyDropper } from '../harness/reply-dropper.js';
import { expectResendSafe, isCall, scriptCall, storeThrough } from './util.js';

describe('a consume whose reply is lost', () => {
  test('is resent by ioredis and returns the value, leaving the same state as without the fault', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => toRef(await store.proxy({ rows: [1, 2, 3] }, { evict: true })),
      op: (store, ref) => {
        const proxy = fromRef<{ rows: number[] }>(ref);
        return resolve(proxy).then((v) => ({ ...v }));
      },
      drop: () => scriptCall('consume'),
      storeOptions: { register: true },
    });
  });

  test('with a tombstoneTtl of 1 ms (gone before the resend) still returns the value', async ({ redis, redisUrl, namespace }) => {
    const { faulted } = await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => toRef(await store.proxy('only once', { evict: true })),
      // The 1 ms tombstone is gone in both runs by the time Redis is compared.
      op: async (store, ref) => {
        const value = String(await resolve(fromRef<string>(ref)));
        await new Promise((r) => setTimeout(r, 20));
        return value;
      },
      drop: () => scriptCall('consume'),
      storeOptions: { register: true, tombstoneTtl: 0.001 },
    });
    expect(faulted).toBe('only once');
  });

  test('when ioredis gives up on it, the library sends it again with the same token and gets the value; another proxy of the ref does not', async ({
    redis,
    redisUrl,
    namespace,
  }) => {
    const dropper = await startReplyDropper(redisUrl);
    // ioredis does not resend: the command fails as soon as the connection drops (maxRetriesPerRequest 0).
    const store = storeThrough(dropper, namespace, { register: true }, { maxRetriesPerRequest: 0 });
    try {
      const ref = toRef(await store.proxy({ payload: 'x'.repeat(1000) }, { evict: true }));
      const proxy: Proxy<{ payload: string }> = fromRef(ref);
      const dropped = dropper.dropNextReply(scriptCall('consume'));
      // It ran and its reply was lost; the library's own resend (same token) gets the grace copy.
      expect((await resolve(proxy)).payload).toHaveLength(1000);
      await dropped;
      expect(dropper.seen.filter((c) => isCall('consume', c))).toHaveLength(2);
      expect(await redis.exists(store.connector.dataKey(ref.key))).toBe(0);
      // Another proxy revived from the same ref is another consumer: the object is gone for it.
      const err = await resolve(fromRef(ref)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProxyResolveMissingKeyError);
      // ... and it is told that this very process consumed it, and how to get it.
      expect((err as Error).message).toMatch(/that is this process: if a resolve of another proxy of this ref failed here/);
    } finally {
      await store.close();
      await dropper.close();
      await deleteNamespaceKeys(redis, namespace);
    }
  });

  test('when Redis stays unreachable past the command timeout, the error says this very call possibly consumed it; resolving the same proxy again gets the value', async ({
    redis,
    redisUrl,
    namespace,
  }) => {
    const dropper = await startReplyDropper(redisUrl);
    const store = new Store(
      `resend-${namespace}`,
      new RedisConnector({ url: dropper.url, namespace, commandTimeoutMs: 1000, redisOptions: { maxRetriesPerRequest: 0, retryStrategy: () => 100 } }),
      { register: true },
    );
    try {
      const ref = toRef(await store.proxy('kept for its consumer', { evict: true }));
      const proxy = fromRef<string>(ref);
      const dropped = dropper.dropNextReply(scriptCall('consume'));
      // Redis "down" for the client from the moment the reply is lost until well past the command timeout.
      dropper.refuseConnections(2500);
      const err = (await resolve(proxy).catch((e: unknown) => e)) as Error;
      await dropped;
      expect(err).toBeInstanceOf(RedisOperationError);
      expect(err.message).toMatch(/possibly consumed by this very call: resolve the same proxy again within 30 s/);
      expect(await redis.exists(store.connector.dataKey(ref.key))).toBe(0);
      await waitUntil(async () => (await store.connector.ready().then(() => true, () => false)), 'Redis is reachable again');
      expect(String(await resolve(proxy))).toBe('kept for its consumer');
    } finally {
      await store.close();
      await dropper.close();
      await deleteNamespaceKeys(redis, namespace);
    }
  });

  test('two processes reviving the same ref race for one value: the consume token is never in the ref', async ({ redisUrl, namespace }) => {
    const dropper = await startReplyDropper(redisUrl);
    const store = storeThrough(dropper, namespace, { register: true });
    try {
      const ref = toRef(await store.proxy([1, 2], { evict: true }));
      expect(JSON.stringify(ref)).not.toMatch(/token/i);
      const results = await Promise.allSettled([resolve(fromRef(ref)), resolve(fromRef(ref)), resolve(fromRef(ref))]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
        expect(r.reason).toBeInstanceOf(ProxyResolveMissingKeyError);
      }
    } finally {
      await store.close();
      await dropper.close();
    }
  });

  test('once the grace copy has expired, the same proxy is told that its own earlier resolve consumed it', async ({ redis, redisUrl, namespace }) => {
    const dropper = await startReplyDropper(redisUrl);
    const store = new Store(
      `resend-${namespace}`,
      new RedisConnector({ url: dropper.url, namespace, commandTimeoutMs: 1000, redisOptions: { maxRetriesPerRequest: 0, retryStrategy: () => 100 } }),
      { register: true },
    );
    try {
      const ref = toRef(await store.proxy('lost', { evict: true }));
      const proxy = fromRef<string>(ref);
      const dropped = dropper.dropNextReply(scriptCall('consume'));
      // Unreachable past the command timeout: the library's resends fail too.
      dropper.refuseConnections(2000);
      await expect(resolve(proxy)).rejects.toThrow(/possibly consumed by this very call/);
      await dropped;
      await waitUntil(async () => (await store.connector.ready().then(() => true, () => false)), 'Redis is reachable again');
      // The grace copy expires (here: removed by hand, as 30 s later).
      const graces = await redis.keys(`${namespace}:*:grace:*`);
      expect(graces).toHaveLength(1);
      await redis.del(...graces);
      const err = await resolve(proxy).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProxyResolveMissingKeyError);
      expect((err as Error).message).toMatch(/by an earlier resolve of this very proxy, whose reply was lost; its grace copy is kept 30 s and has expired/);
    } finally {
      await store.close();
      await dropper.close();
    }
  });
});

describe('a consume of a reads: n object whose reply is lost', () => {
  test('an earlier read is resent: same value, and the budget is spent once', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => toRef(await store.proxy({ rows: [1, 2, 3] }, { reads: 3 })),
      op: (store, ref) => resolve(fromRef<{ rows: number[] }>(ref)).then((v) => ({ ...v })),
      drop: () => scriptCall('consume'),
      storeOptions: { register: true },
    });
  });

  test('the last read is resent: same value (from its grace copy), and the object is gone once', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => {
        const ref = toRef(await store.proxy({ last: true }, { reads: 2 }));
        await resolve(fromRef(ref));
        return ref;
      },
      op: (store, ref) => resolve(fromRef<{ last: boolean }>(ref)).then((v) => ({ ...v })),
      drop: () => scriptCall('consume'),
      storeOptions: { register: true },
    });
  });
});
