/**
 * ContextLifetime against a real Redis. The first block ports ProxyStore's
 * tests/store/lifetimes_test.py (context part); the rest covers what living
 * in Redis adds: other handles, ended markers, chunked work, races.
 */
import { randomId } from '../../src/keys.js';
import {
  ContextLifetime,
  InvalidOptionsError,
  LeaseLifetime,
  LifetimeEndedError,
  ProxyStoreFactoryError,
  type RedisConnector,
  Store,
  fromRef,
  getKey,
  isResolved,
  resolve,
  toRef,
  type Lifetime,
  type Proxy,
} from '../../src/index.js';
import { lifetimeTuning } from '../../src/lifetimes/base.js';
import { isLifetime } from '../../src/lifetimes/lifetime.js';
import { openCount } from '../../src/lifetimes/open.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { foreignMode, lifetimeKeys, namespaceKeys, objectCount } from './util.js';

describe('ported from ProxyStore (tests/store/lifetimes_test.py)', () => {
  test('ContextLifetime implements the Lifetime protocol', async ({ store }) => {
    const lifetime = new ContextLifetime(store);
    const asProtocol: Lifetime = lifetime;
    expect(isLifetime(asProtocol)).toBe(true);
    await lifetime.close();
  });

  test('context lifetime cleanup via keys and via proxies', async ({ store }) => {
    const key1 = await store.put('value1');
    const key2 = await store.put('value2');
    const key3 = await store.put('value3');
    const key4 = await store.put('value4');
    const proxy1: Proxy<string> = await store.proxyFromKey(key3);
    const proxy2: Proxy<string> = await store.proxyFromKey(key4);

    let lifetime: ContextLifetime;
    {
      await using lt = new ContextLifetime(store);
      lifetime = lt;
      expect(await lifetime.done()).toBe(false);
      await lifetime.addKey(key1, key2);
      await lifetime.addProxy(proxy1, proxy2);
    }

    expect(await lifetime.done()).toBe(true);
    for (const key of [key1, key2, key3, key4]) expect(await store.exists(key)).toBe(false);
  });

  test('close is idempotent', async ({ store }) => {
    const lifetime = new ContextLifetime(store);
    await lifetime.close();
    await lifetime.close();
    expect(await lifetime.done()).toBe(true);
  });

  test('addProxy of a proxy that does not come from a store throws ProxyStoreFactoryError', async ({ store }) => {
    await using lifetime = new ContextLifetime(store);
    const notFromAStore = new Proxy<unknown[]>([], {});
    await expect(lifetime.addProxy(notFromAStore)).rejects.toThrow(ProxyStoreFactoryError);
    await expect(lifetime.addProxy({})).rejects.toThrow(ProxyStoreFactoryError);
    await expect(lifetime.addProxy('key')).rejects.toThrow(/addProxy takes proxies made by a store/);
  });

  test('addKey and addProxy after the end throw LifetimeEndedError', async ({ store }) => {
    const key = await store.put('value');
    const proxy = await store.proxyFromKey<string>(key);
    const lifetime = new ContextLifetime(store);
    await lifetime.close();

    await expect(lifetime.addKey(key)).rejects.toThrow(LifetimeEndedError);
    await expect(lifetime.addProxy(proxy)).rejects.toThrow(LifetimeEndedError);
    await store.evict(key);
  });
});

describe('objects put under a lifetime', () => {
  test('put, putBatch, proxy, proxyBatch and proxyFromKey with { lifetime } are all evicted by close', async ({ store }) => {
    const lifetime = new ContextLifetime(store);
    const k1 = await store.put({ a: 1 }, { lifetime });
    const [k2, k3] = await store.putBatch(['b', 'c'], { lifetime });
    const p1 = await store.proxy([1, 2, 3], { lifetime });
    const [p2, p3] = await store.proxyBatch([new Map([['m', 1]]), 'str'], { lifetime });
    const outside = await store.put('outside');
    const p4 = await store.proxyFromKey<string>(outside, { lifetime });
    const keys = [k1, k2, k3, getKey(p1), getKey(p2), getKey(p3), outside] as string[];
    for (const key of keys) expect(await store.exists(key)).toBe(true);
    expect(isResolved(p1)).toBe(true);
    expect(await resolve(p4)).toBe('outside');

    await lifetime.close();
    for (const key of keys) expect(await store.exists(key)).toBe(false);
  });

  test("an object put under a lifetime shares the lifetime's hash tag", async ({ store }) => {
    await using lifetime = new ContextLifetime(store);
    const key = await store.put('v', { lifetime });
    expect(key.startsWith(`${lifetime.id}~`)).toBe(true);
    const tag = (k: string) => /\{([^}]*)\}/.exec(k)?.[1];
    expect(tag(store.connector.dataKey(key))).toBe(tag(lifetimeKeys(store, lifetime.id).meta));
  });

  test('close leaves nothing but an ended marker, which has a TTL', async ({ store, redis, namespace }) => {
    const lifetime = new ContextLifetime(store, { name: 'job-1' });
    await store.putBatch([1, 2, 3], { lifetime });
    await lifetime.addKey(await store.put('foreign'));
    await lifetime.close();
    const { meta } = lifetimeKeys(store, lifetime.id);
    expect(await namespaceKeys(redis, namespace)).toEqual([meta]);
    expect(await redis.hget(meta, 'state')).toBe('ended');
    const ttl = await redis.pttl(meta);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(store.tombstoneTtl * 1000);
  });

  test('the error after the end names the lifetime and when it was closed', async ({ store }) => {
    const lifetime = new ContextLifetime(store, { name: 'nightly' });
    const other = await ContextLifetime.attach(store, lifetime.id);
    await lifetime.close();
    const err = await store.put('late', { lifetime: other }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifetimeEndedError);
    expect((err as LifetimeEndedError).lifetime).toBe(lifetime.id);
    expect((err as Error).message).toMatch(new RegExp(`lifetime ${lifetime.id} \\("nightly"\\) was closed \\d+\\.\\d s ago.*use a new lifetime`));
  });

  test('closeStores closes the store after the lifetime', async ({ connect }) => {
    const store = new Store('closing-with-lifetime', connect());
    const lifetime = new ContextLifetime(store);
    const key = await store.put('v', { lifetime });
    await lifetime.close({ closeStores: true });
    expect(store.isClosed).toBe(true);
    const check = new Store('check', connect());
    expect(await check.exists(key)).toBe(false);
    await check.close();
  });

  test('a lifetime refuses objects of a store in another namespace', async ({ store, connect, namespace }) => {
    await using lifetime = new ContextLifetime(store);
    const elsewhere = new Store('elsewhere', connect({ namespace: `${namespace}-other` }));
    try {
      await expect(elsewhere.put('v', { lifetime })).rejects.toThrow(InvalidOptionsError);
      const p = await elsewhere.proxy('x');
      await expect(lifetime.addProxy(p)).rejects.toThrow(/a lifetime and its objects come from the same store/);
      await elsewhere.evict(getKey(p));
    } finally {
      await elsewhere.close();
    }
  });

  test('addKey of a proxy, or of something that is not a key, says what to use instead', async ({ store }) => {
    await using lifetime = new ContextLifetime(store);
    const unresolved = await store.proxy([1], { populateTarget: false });
    await expect(lifetime.addKey(unresolved as unknown as string)).rejects.toThrow(/got a proxy: use addProxy/);
    await expect(lifetime.addKey(42 as unknown as string)).rejects.toThrow(InvalidOptionsError);
    await lifetime.addProxy(unresolved);
  });

  test('evict together with a lifetime is accepted: the first consume or the close, whichever comes first, ends the object', async ({ store }) => {
    await using lifetime = new ContextLifetime(store);
    const consumed = await store.proxy('v', { evict: true, lifetime });
    const kept = await store.proxy('w', { evict: true, lifetime });
    expect(String(await resolve(fromRef(toRef(consumed))))).toBe('v');
    expect(await store.exists(getKey(consumed))).toBe(false);
    await lifetime.close();
    expect(await store.exists(getKey(kept))).toBe(false);
  });

  test('a closed store refuses a lifetime on it', async ({ connect }) => {
    const store = new Store('closed-early', connect());
    await store.close();
    expect(() => new ContextLifetime(store)).toThrow(/store closed-early is closed/);
  });
});

describe('another handle on the same lifetime (attach)', () => {
  function secondStore(connect: () => RedisConnector): Store {
    return new Store('second', connect());
  }

  test('an attached handle adds keys, sees done() flip when the first closes it, then gets LifetimeEndedError', async ({
    store,
    connect,
  }) => {
    // Another connection sees the lifetime only once Redis has run its creation.
    const lifetime = await new ContextLifetime(store, { name: 'shared' }).waitUntilReady();
    const other = secondStore(connect);
    try {
      const attached = await ContextLifetime.attach(other, lifetime.id);
      expect(attached.id).toBe(lifetime.id);
      expect(attached.name).toBe('shared');
      const key = await other.put('from the second handle', { lifetime: attached });
      expect(await attached.done()).toBe(false);

      await lifetime.close();
      expect(await attached.done()).toBe(true);
      expect(await other.exists(key)).toBe(false);
      const outside = await other.put('outside');
      // Known ended by this handle (done() said so), and refused by Redis for a fresh handle.
      await expect(attached.addKey(outside)).rejects.toThrow(LifetimeEndedError);
      const fresh = await ContextLifetime.attach(other, lifetime.id);
      await expect(fresh.addKey(outside)).rejects.toThrow(/was closed/);
      await other.evict(outside);
    } finally {
      await other.close();
    }
  });

  test('an attached handle can close the lifetime for its creator', async ({ store, connect }) => {
    const lifetime = new ContextLifetime(store);
    const key = await store.put('v', { lifetime });
    const other = secondStore(connect);
    try {
      await (await ContextLifetime.attach(other, lifetime.id)).close();
      expect(await lifetime.done()).toBe(true);
      expect(await store.exists(key)).toBe(false);
      await expect(store.put('late', { lifetime })).rejects.toThrow(LifetimeEndedError);
      await lifetime.close(); // still a no-op
    } finally {
      await other.close();
    }
  });

  test('waitUntilReady resolves to the lifetime once Redis has it, for any connection to see', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store, { name: 'ready' });
    expect(await lifetime.waitUntilReady()).toBe(lifetime);
    expect(await redis.hgetall(lifetimeKeys(store, lifetime.id).meta)).toMatchObject({ state: 'open', kind: 'context', name: 'ready' });
    await lifetime.close();
  });

  test('an id Redis does not know is a lifetime that has ended', async ({ store }) => {
    const ghost = await ContextLifetime.attach(store, 'AAAAAAAAAAAAAAAAAAAAAA');
    expect(await ghost.done()).toBe(true);
    await expect(store.put('v', { lifetime: ghost })).rejects.toThrow(LifetimeEndedError);
    await ghost.close();
  });

  test('attach refuses something that is not a lifetime id', async ({ store }) => {
    await expect(ContextLifetime.attach(store, 'has{brace}')).rejects.toThrow(InvalidOptionsError);
    await expect(ContextLifetime.attach(store, '')).rejects.toThrow(/not a lifetime id/);
  });

  test('a close begun elsewhere refuses adds at once and is finished by close() from any handle', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const keys = await store.putBatch([1, 2, 3, 4, 5], { lifetime });
    const other = await ContextLifetime.attach(store, lifetime.id);
    // One bounded step, as a process that died mid-close would leave it.
    const k = lifetimeKeys(store, lifetime.id);
    const step = await store.connector.scripts.run('lifetimeClose', k, { count: 2, endedTtlMs: 60_000, foreign: foreignMode(store), token: randomId(), unlinked: [] });
    expect(step).toEqual({ finished: false, evicted: 2, before: 'open', handed: [], deduped: false });
    expect(await redis.hget(k.meta, 'state')).toBe('closing');

    expect(await other.done()).toBe(true);
    await expect(store.put('late', { lifetime })).rejects.toThrow(/is being closed/);
    await other.close();
    for (const key of keys) expect(await store.exists(key)).toBe(false);
    expect(await redis.hget(k.meta, 'state')).toBe('ended');
  });
});

describe('bounded work and races', () => {
  test('put, addKey and close split their work into bounded script calls', async ({ store, redis, namespace }) => {
    const saved = { ...lifetimeTuning };
    Object.assign(lifetimeTuning, { chunk: 7, batch: 5, batchBytes: 64 });
    try {
      const lifetime = new ContextLifetime(store);
      const keys = await store.putBatch(Array.from({ length: 103 }, (_, i) => ({ i, pad: 'x'.repeat(i % 40) })), { lifetime });
      expect(new Set(keys).size).toBe(103);
      expect(await redis.scard(lifetimeKeys(store, lifetime.id).members)).toBe(103);
      const foreign = await store.putBatch(Array.from({ length: 23 }, (_, i) => i));
      await lifetime.addKey(...foreign);
      expect(await redis.scard(lifetimeKeys(store, lifetime.id).foreign)).toBe(23);
      expect(await objectCount(redis, namespace)).toBe(126);
      await lifetime.close();
      expect(await objectCount(redis, namespace)).toBe(0);
    } finally {
      Object.assign(lifetimeTuning, saved);
    }
  });

  test('puts racing a close are either evicted by it or refused: nothing survives', async ({ store, redis, namespace }) => {
    const saved = { ...lifetimeTuning };
    Object.assign(lifetimeTuning, { chunk: 3 });
    try {
      const lifetime = new ContextLifetime(store);
      await store.putBatch(Array.from({ length: 50 }, (_, i) => i), { lifetime });
      const puts = Array.from({ length: 40 }, (_, i) => store.put(i, { lifetime }).then(() => 'stored', (e: unknown) => e));
      const closes = [lifetime.close(), (await ContextLifetime.attach(store, lifetime.id)).close()];
      const outcomes = await Promise.all(puts);
      await Promise.all(closes);
      for (const o of outcomes) if (o !== 'stored') expect(o).toBeInstanceOf(LifetimeEndedError);
      expect(await objectCount(redis, namespace)).toBe(0);
    } finally {
      Object.assign(lifetimeTuning, saved);
    }
  });
});

describe('store.close() with lifetimes still open', () => {
  test('closes the ContextLifetimes made through it: their objects go, only an ended marker with a TTL stays', async ({
    connect,
    redis,
    namespace,
    store,
  }) => {
    const owner = new Store('owner', connect());
    const lifetime = new ContextLifetime(owner, { name: 'left open' });
    const keys = await owner.putBatch([1, 2, 3], { lifetime });
    const foreign = await owner.put('foreign');
    await lifetime.addKey(foreign);
    // A handle the application dropped is closed too: its lifetime would otherwise leak forever.
    const dropped = await owner.put('under a forgotten handle', { lifetime: new ContextLifetime(owner) });

    await owner.close();

    for (const key of [...keys, foreign, dropped]) expect(await store.exists(key), key).toBe(false);
    expect(await lifetime.done()).toBe(true);
    const left = await namespaceKeys(redis, namespace);
    expect(left.every((k) => k.endsWith(':lt'))).toBe(true);
    expect(left).toHaveLength(2);
    for (const meta of left) {
      expect(await redis.hget(meta, 'state')).toBe('ended');
      expect(await redis.pttl(meta)).toBeGreaterThan(0);
    }
    await expect(store.put('late', { lifetime: await ContextLifetime.attach(store, lifetime.id) })).rejects.toThrow(LifetimeEndedError);
  });

  test('leaves LeaseLifetimes to their lease and attached lifetimes to the process that made them', async ({ connect, store, redis }) => {
    const guest = new Store('guest', connect());
    const lease = await new LeaseLifetime(guest, { expiry: 60 }).waitUntilReady();
    const leased = await guest.put('outlives its creator', { lifetime: lease });
    const shared = await new ContextLifetime(store).waitUntilReady();
    const attached = await ContextLifetime.attach(guest, shared.id);
    const added = await guest.put('added by the guest', { lifetime: attached });

    await guest.close();

    expect(await store.exists(leased)).toBe(true);
    expect(await redis.pttl(store.connector.dataKey(leased))).toBeGreaterThan(0);
    expect(await (await LeaseLifetime.attach(store, lease.id)).done()).toBe(false);
    expect(await shared.done()).toBe(false);
    expect(await store.exists(added)).toBe(true);
    await shared.close();
    await (await LeaseLifetime.attach(store, lease.id)).close();
  });

  test('a lifetime closed (or seen ended) before its store is not closed again', async ({ connect }) => {
    const owner = new Store('owner', connect());
    const closed = new ContextLifetime(owner);
    await closed.close();
    const elsewhere = await new ContextLifetime(owner).waitUntilReady();
    await (await ContextLifetime.attach(owner, elsewhere.id)).close();
    expect(await elsewhere.done()).toBe(true);
    expect(openCount(owner)).toBe(0);
    await owner.close();
  });
});

