/**
 * StaticLifetime in this process. The first block ports ProxyStore's static
 * lifetime tests; process ends (signals, beforeExit, SIGKILL) are tested
 * with real child processes in static-process.test.ts.
 */
import type { Redis } from 'ioredis';
import {
  InvalidOptionsError,
  LifetimeEndedError,
  ProxyStoreFactoryError,
  type RedisConnector,
  StaticLifetime,
  Store,
  getKey,
  type Proxy,
} from '../../src/index.js';
import { STATIC_MARGIN_LEASES } from '../../src/lifetimes/base.js';
import { kResetStatic } from '../../src/lifetimes/static.js';
import { afterEach, describe, expect, test } from '../harness/store-fixture.js';
import { lifetimeKeys, objectCount, waitUntil } from './util.js';

afterEach(async () => {
  // As ProxyStore's tests reset StaticLifetime._instance.
  await StaticLifetime.instance().close();
  StaticLifetime[kResetStatic]();
});

function leaseStore(connector: RedisConnector, name: string, leaseTtl = 1): Store {
  return new Store(name, connector, { leaseTtl });
}

describe('ported from ProxyStore (tests/store/lifetimes_test.py)', () => {
  test('StaticLifetime is a singleton', () => {
    expect(StaticLifetime.instance()).toBe(StaticLifetime.instance());
    expect(() => new (StaticLifetime as unknown as new () => StaticLifetime)()).toThrow(/singleton/);
  });

  test('addKey without its store is refused (the store parameter is required)', async () => {
    await expect(StaticLifetime.instance().addKey('k')).rejects.toThrow(InvalidOptionsError);
    await expect(StaticLifetime.instance().addKey()).rejects.toThrow(/requires the store parameter/);
  });

  test('addProxy of a proxy that does not come from a store throws ProxyStoreFactoryError', async () => {
    await expect(StaticLifetime.instance().addProxy(new Proxy<unknown[]>([], {}))).rejects.toThrow(ProxyStoreFactoryError);
  });

  test('static lifetime cleanup via keys and proxies; close through any handle is idempotent', async ({ store }) => {
    const key1 = await store.put('value1');
    const key2 = await store.put('value2');
    const key3 = await store.put('value3');
    const key4 = await store.put('value4');
    const proxy1: Proxy<string> = await store.proxyFromKey(key3);
    const proxy2: Proxy<string> = await store.proxyFromKey(key4);

    const lifetime = StaticLifetime.instance();
    expect(await lifetime.done()).toBe(false);
    await lifetime.addKey(key1, key2, { store });
    await lifetime.addProxy(proxy1, proxy2);

    await StaticLifetime.instance().close();
    await lifetime.close();
    expect(await lifetime.done()).toBe(true);
    for (const key of [key1, key2, key3, key4]) expect(await store.exists(key)).toBe(false);
  });

  test('close({ closeStores: true }) closes the stores of its objects', async ({ connect, namespace, redis }) => {
    const store = leaseStore(connect(), 'static-close-store');
    await store.put('value', { lifetime: StaticLifetime.instance() });
    await StaticLifetime.instance().close({ closeStores: true });
    expect(store.isClosed).toBe(true);
    expect(await objectCount(redis, namespace)).toBe(0);
  });
});

describe('a lease renewed by a heartbeat', () => {
  test('static objects carry a lease of the store\'s leaseTtl, plus an outage margin of 2 leases', async ({ connect, redis }) => {
    const store = leaseStore(connect(), 'lease-ttl', 5);
    try {
      const key = await store.put('v', { lifetime: StaticLifetime.instance() });
      const id = StaticLifetime.instance().idIn(store) as string;
      const [expiresAt, lease] = await redis.hmget(lifetimeKeys(store, id).meta, 'expiresAt', 'lease');
      expect(lease).toBe('5000');
      // The keys expire 2 leases after the lease end: what lets them outlive a Redis outage.
      expect(await redis.pexpiretime(store.connector.dataKey(key))).toBe(Number(expiresAt) + STATIC_MARGIN_LEASES * 5_000);
      const pttl = await redis.pttl(store.connector.dataKey(key));
      expect(pttl).toBeGreaterThan(STATIC_MARGIN_LEASES * 5_000);
      expect(pttl).toBeLessThanOrEqual(4 * 5_000);
    } finally {
      await store.close();
    }
  });

  test('the heartbeat moves the lease end forward while the process lives', async ({ connect, redis }) => {
    // A 3 s lease renewed every second: robust against a loaded machine.
    const store = leaseStore(connect(), 'heartbeat', 3);
    try {
      const key = await store.put('v', { lifetime: StaticLifetime.instance() });
      const data = store.connector.dataKey(key);
      const first = await redis.pexpiretime(data);
      await waitUntil(async () => (await redis.pexpiretime(data)) > first, 'the lease was renewed');
      const id = StaticLifetime.instance().idIn(store) as string;
      expect(await redis.pexpiretime(data)).toBe(await redis.pexpiretime(lifetimeKeys(store, id).meta));
    } finally {
      await store.close();
    }
  });

  test('a part whose lease lapsed is replaced by a new one on the next put', async ({ connect, namespace, redis }) => {
    const store = leaseStore(connect(), 'lapse', 30);
    try {
      const first = await store.put('a', { lifetime: StaticLifetime.instance() });
      const lapsedId = StaticLifetime.instance().idIn(store) as string;
      // What Redis does when a stalled process misses its renewals.
      const k = lifetimeKeys(store, lapsedId);
      await redis.del(k.meta, k.members, store.connector.dataKey(first));
      const second = await store.put('b', { lifetime: StaticLifetime.instance() });
      const newId = StaticLifetime.instance().idIn(store);
      expect(newId).not.toBe(lapsedId);
      expect(second.startsWith(`${newId}~`)).toBe(true);
      expect(await store.get(second)).toBe('b');
    } finally {
      await store.close();
    }
    expect(await objectCount(redis, namespace)).toBe(0);
  });
});

describe('a lease end that passed: an outage, or a heartbeat that stopped', () => {
  // A 30 s lease (heartbeat every 10 s): the test moves the part's lease end
  // and last-touched time itself, as a silence or a stopped heartbeat leaves them.
  const LEASE_MS = 30_000;

  async function serverNow(redis: Redis): Promise<number> {
    const [s, us] = (await redis.time()) as unknown as [string, string];
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  /** A store with two static objects whose part's lease ended 100 ms ago, last touched `touchedAgoMs` ago. */
  async function lapsed(connector: RedisConnector, redis: Redis, touchedAgoMs: number) {
    const store = leaseStore(connector, `lapsed-${touchedAgoMs}`, LEASE_MS / 1000);
    const keys = await store.putBatch(['a', 'b'], { lifetime: StaticLifetime.instance() });
    const part = StaticLifetime.instance().idIn(store) as string;
    const meta = lifetimeKeys(store, part).meta;
    const now = await serverNow(redis);
    await redis.hset(meta, 'expiresAt', now - 100, 'seen', now - touchedAgoMs);
    return { store, keys, part, meta };
  }

  /** What the client does when its connection comes back: reconnect (the part renews at once on `ready`). */
  function reconnect(store: Store): void {
    (store.connector.client as unknown as { disconnect(reconnect: boolean): void }).disconnect(true);
  }

  test('after a silence longer than lease / 2, the heartbeat (on reconnect) gives the same part a fresh lease', async ({ connect, redis }) => {
    const { store, keys, part, meta } = await lapsed(connect(), redis, LEASE_MS);
    try {
      const before = await serverNow(redis);
      reconnect(store);
      await waitUntil(async () => Number(await redis.hget(meta, 'expiresAt')) > before, 'the part got a fresh lease');
      const [expiresAt, seen, state] = await redis.hmget(meta, 'expiresAt', 'seen', 'state');
      expect(state).toBe('open');
      expect(Number(seen)).toBeGreaterThanOrEqual(before);
      expect(Number(expiresAt) - Number(seen)).toBe(LEASE_MS);
      for (const key of keys) {
        expect(await store.get(key)).toBeDefined();
        expect(await redis.pexpiretime(store.connector.dataKey(key))).toBe(Number(expiresAt) + STATIC_MARGIN_LEASES * LEASE_MS);
      }
      expect(StaticLifetime.instance().idIn(store)).toBe(part);
    } finally {
      await store.close();
    }
  });

  test('after a silence, a put gives the same part a fresh lease and goes under it', async ({ connect, redis }) => {
    const { store, keys, part, meta } = await lapsed(connect(), redis, LEASE_MS);
    try {
      const before = await serverNow(redis);
      const key = await store.put('c', { lifetime: StaticLifetime.instance() });
      expect(key.startsWith(`${part}~`)).toBe(true);
      const expiresAt = Number(await redis.hget(meta, 'expiresAt'));
      expect(expiresAt).toBeGreaterThanOrEqual(before + LEASE_MS);
      for (const k of [...keys, key]) expect(await store.get(k)).toBeDefined();
      expect(await redis.pexpiretime(store.connector.dataKey(key))).toBe(expiresAt + STATIC_MARGIN_LEASES * LEASE_MS);
    } finally {
      await store.close();
    }
  });

  test('touched lately (puts went on while its heartbeat stopped), the heartbeat ends the part and evicts its objects', async ({ connect, redis }) => {
    const { store, keys, meta } = await lapsed(connect(), redis, 100);
    try {
      reconnect(store);
      await waitUntil(async () => (await redis.hget(meta, 'state')) === 'ended', 'the part ended');
      for (const key of keys) expect(await store.exists(key)).toBe(false);
      await waitUntil(async () => StaticLifetime.instance().idIn(store) === undefined, 'the part is dropped');
      // The next static object starts a new part.
      const key = await store.put('c', { lifetime: StaticLifetime.instance() });
      expect(StaticLifetime.instance().idIn(store)).toBeDefined();
      expect(await store.get(key)).toBe('c');
    } finally {
      await store.close();
    }
  });

  test('touched lately, a put is refused by the part and goes under a new one; the old part is evicted', async ({ connect, redis }) => {
    const { store, keys, part, meta } = await lapsed(connect(), redis, 100);
    try {
      const key = await store.put('c', { lifetime: StaticLifetime.instance() });
      const now = StaticLifetime.instance().idIn(store) as string;
      expect(now).not.toBe(part);
      expect(key.startsWith(`${now}~`)).toBe(true);
      await waitUntil(async () => (await redis.hget(meta, 'state')) === 'ended', 'the old part was closed');
      for (const k of keys) expect(await store.exists(k)).toBe(false);
      expect(await store.get(key)).toBe('c');
    } finally {
      await store.close();
    }
  });
});

describe('stores', () => {
  test("store.close() evicts that store's static objects and no other store's", async ({ connect, namespace, redis }) => {
    const a = leaseStore(connect(), 'store-a', 30);
    const b = leaseStore(connect({ namespace: `${namespace}-b` }), 'store-b', 30);
    try {
      const ka = await a.put('a', { lifetime: StaticLifetime.instance() });
      const pb = await b.proxy('b', { lifetime: StaticLifetime.instance() });
      expect(StaticLifetime.instance().idIn(a)).not.toBe(StaticLifetime.instance().idIn(b));
      await a.close();
      expect(await redis.exists(a.connector.dataKey(ka))).toBe(0);
      expect(await b.exists(getKey(pb))).toBe(true);
      expect(await StaticLifetime.instance().done()).toBe(false);
      // The static lifetime goes on in the other store, and takes new stores.
      await b.put('more', { lifetime: StaticLifetime.instance() });
    } finally {
      await StaticLifetime.instance().close();
      await b.close();
    }
    expect(await objectCount(redis, `${namespace}-b`)).toBe(0);
  });

  test('after close, static puts throw LifetimeEndedError', async ({ store }) => {
    await StaticLifetime.instance().close();
    await expect(store.put('v', { lifetime: StaticLifetime.instance() })).rejects.toThrow(LifetimeEndedError);
    await expect(store.put('v', { lifetime: StaticLifetime.instance() })).rejects.toThrow(/was closed in this process/);
  });

  test('proxyFromKey with the static lifetime needs no store argument', async ({ store }) => {
    const key = await store.put('v');
    await store.proxyFromKey(key, { lifetime: StaticLifetime.instance() });
    await StaticLifetime.instance().close();
    expect(await store.exists(key)).toBe(false);
  });

  test("with signals: 'none' it installs no signal listener (beforeExit only); switching back listens again", async ({ store }) => {
    const counts = () => ['SIGINT', 'SIGTERM', 'beforeExit'].map((e) => process.listenerCount(e));
    const before = counts();
    const lifetime = StaticLifetime.instance({ signals: 'none' });
    await store.put('v', { lifetime });
    expect(counts()).toEqual([before[0], before[1], (before[2] as number) + 1]);
    expect(StaticLifetime.instance({ signals: 'auto' })).toBe(lifetime);
    expect(counts()).toEqual(before.map((n) => n + 1));
    StaticLifetime.instance({ signals: 'none' });
    expect(counts()).toEqual([before[0], before[1], (before[2] as number) + 1]);
    await lifetime.close();
    expect(counts()).toEqual(before);
  });

  test.for([['an unknown mode', { signals: 'never' }], ['not an object', 'none']] as const)(
    'StaticLifetime.instance with %s is an InvalidOptionsError',
    ([, options]) => {
      expect(() => StaticLifetime.instance(options as never)).toThrow(InvalidOptionsError);
    },
  );

  test('while static objects exist, the process listens for SIGINT, SIGTERM and beforeExit; after, it does not', async ({ store }) => {
    const counts = () => ['SIGINT', 'SIGTERM', 'beforeExit'].map((e) => process.listenerCount(e));
    const before = counts();
    await store.put('v', { lifetime: StaticLifetime.instance() });
    expect(counts()).toEqual(before.map((n) => n + 1));
    await StaticLifetime.instance().close();
    expect(counts()).toEqual(before);
  });
});
