/**
 * `ttl` (seconds) and the Store option `defaultTtl` (single and cluster
 * projects): a Redis TTL on every key of the object, with no lifetime;
 * `defaultTtl` applies to objects put with no ttl, lifetime or owner.
 */
import { ContextLifetime, InvalidOptionsError, RedisConnector, Store, drop, getKey, resolve, toRef, fromRef } from '../src/index.js';
import { connectionOptions, describe, expect, namespaceKeys, test } from './harness/store-fixture.js';

/** Milliseconds until the data key of `key` expires (-1: never). */
function pttl(store: Store, redis: Parameters<typeof namespaceKeys>[0], key: string): Promise<number> {
  return redis.pttl(store.connector.dataKey(key));
}

describe('ttl', () => {
  test('put, proxy, putBatch, proxyBatch and lockedProxy give the object a Redis TTL', async ({ store, redis }) => {
    const keys = [
      await store.put('a', { ttl: 30 }),
      getKey(await store.proxy('b', { ttl: 30 })),
      ...(await store.putBatch(['c', 'd'], { ttl: 30 })),
      ...(await store.proxyBatch(['e', 'f'], { ttl: 30 })).map((p) => getKey(p)),
      getKey((await store.lockedProxy('g', { ttl: 30 })).unlock()),
    ];
    for (const key of keys) {
      const ms = await pttl(store, redis, key);
      expect(ms).toBeGreaterThan(20_000);
      expect(ms).toBeLessThanOrEqual(30_000);
    }
    await Promise.all(keys.map((k) => store.evict(k)));
  });

  test('an object put with a ttl is gone after it, with every key it had', async ({ store, redis, namespace }) => {
    const p = await store.proxy({ short: true }, { ttl: 0.3, evict: true });
    const key = getKey(p);
    await expect.poll(() => store.exists(key), { timeout: 10_000, interval: 50 }).toBe(false);
    expect((await namespaceKeys(redis, namespace)).filter((k) => k.includes(key))).toEqual([]);
    await expect(resolve(fromRef(toRef(p)))).rejects.toThrow(/is missing from store/);
  });

  test('a ttl is checked: seconds from 0.001 to 5,000,000,000', async ({ store }) => {
    for (const ttl of [0, -1, 0.0001, Number.NaN, Infinity, 6e9, '5' as unknown as number]) {
      await expect(store.put('v', { ttl })).rejects.toThrow(/store\.put: ttl must be a number of seconds from 0\.001 to 5,000,000,000/);
      await expect(store.proxy('v', { ttl })).rejects.toThrow(InvalidOptionsError);
    }
  });
});

describe('defaultTtl', () => {
  function storeWith(target: Parameters<typeof connectionOptions>[0], namespace: string, defaultTtl: number): Store {
    return new Store(`default-ttl-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), { defaultTtl });
  }

  test('applies to objects put with no ttl, lifetime or owner; a ttl overrides it', async ({ target, namespace, redis }) => {
    const store = storeWith(target, namespace, 60);
    try {
      const plain = await store.put('plain');
      const batch = await store.putBatch([1, 2]);
      const proxied = getKey(await store.proxy('p'));
      const budget = await store.put('r', { reads: 3 });
      for (const key of [plain, ...batch, proxied, budget]) {
        expect(await pttl(store, redis, key)).toBeGreaterThan(50_000);
        expect(await pttl(store, redis, key)).toBeLessThanOrEqual(60_000);
      }
      expect(await redis.pttl(store.connector.keys.object('rules', budget))).toBeGreaterThan(50_000);
      const own = await store.put('own', { ttl: 5 });
      expect(await pttl(store, redis, own)).toBeLessThanOrEqual(5_000);
      await Promise.all([plain, ...batch, proxied, budget, own].map((k) => store.evict(k)));
    } finally {
      await store.close();
    }
  });

  test('does not apply under a lifetime or to an owned object', async ({ target, namespace, redis }) => {
    const store = storeWith(target, namespace, 60);
    try {
      const lifetime = new ContextLifetime(store);
      const member = await store.put('member', { lifetime });
      expect(await pttl(store, redis, member)).toBe(-1);
      const owned = await store.ownedProxy({ o: 1 });
      // An owned object's keys follow its owner's lease, not the default.
      expect(await pttl(store, redis, getKey(owned))).toBeGreaterThan(60_000);
      await drop(owned);
      await lifetime.close();
    } finally {
      await store.close();
    }
  });

  test('is part of the store config and checked like a ttl', async ({ target, namespace }) => {
    const store = storeWith(target, namespace, 12.5);
    try {
      expect(store.config().defaultTtl).toBe(12.5);
      const copy = Store.fromConfig({ ...store.config(), name: `copy-${namespace}`, register: false });
      expect(copy.defaultTtl).toBe(12.5);
      await copy.close();
    } finally {
      await store.close();
    }
    expect(() => storeWith(target, namespace, 0)).toThrow(/defaultTtl must be a number of seconds from 0\.001/);
  });
});
