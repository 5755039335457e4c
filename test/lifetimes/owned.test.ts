/**
 * Owned objects in lifetimes (DESIGN.md §7.1, docs/lifetimes.md "Owned
 * objects in lifetimes"), on a single Redis and on the Cluster:
 *
 * - `ownedProxy(value, { lifetime })`, `lifetime.addProxy(owned)`,
 *   `addKey` of an owned key and `intoOwned` of a member (own or foreign)
 *   make the lifetime bound the owner;
 * - at the lifetime's end an unborrowed owned member is evicted; a borrowed
 *   one stays (readable through its borrows) until its last borrow is
 *   released or lapses, while borrow/mutBorrow/update/clone reject
 *   LifetimeEndedError; the owner's handle is invalid (LifetimeEndedError);
 * - a lease never deletes an object under a live borrow, and deletes it at
 *   the borrow's end once the lease has passed; extends move the owner's bound;
 * - StaticLifetime too.
 */
import type { Cluster, Redis } from 'ioredis';
import {
  AlreadyOwnedError,
  ContextLifetime,
  InvalidOptionsError,
  LeaseLifetime,
  LifetimeEndedError,
  ReferenceInvalidError,
  StaticLifetime,
  borrow,
  clone,
  drop,
  getKey,
  intoOwned,
  isValid,
  mutBorrow,
  release,
  resolve,
  update,
  type OwnedProxy,
} from '../../src/index.js';
import { tagOf } from '../../src/keys.js';
import { kResetStatic } from '../../src/lifetimes/static.js';
import { afterEach, describe, expect, test } from '../harness/ownership.js';
import { namespaceKeys, waitUntil } from './util.js';

afterEach(async () => {
  await StaticLifetime.instance().close();
  StaticLifetime[kResetStatic]();
});

async function exists(redis: Redis | Cluster, data: string): Promise<boolean> {
  return (await redis.exists(data)) === 1;
}

/** Every owner operation rejects LifetimeEndedError (and the handle is invalid). */
async function expectOwnerEnded(owned: OwnedProxy<unknown>): Promise<void> {
  await expect(borrow(owned)).rejects.toThrow(LifetimeEndedError);
  expect(isValid(owned)).toBe(false);
  await expect(mutBorrow(owned)).rejects.toThrow(LifetimeEndedError);
  await expect(clone(owned)).rejects.toThrow(LifetimeEndedError);
  await expect(update(owned)).rejects.toThrow(LifetimeEndedError);
  await expect(drop(owned)).rejects.toThrow(LifetimeEndedError);
  await expect(resolve(owned)).rejects.toThrow(LifetimeEndedError);
}

describe('ContextLifetime with owned members', () => {
  test('ownedProxy(value, { lifetime }): an own member; the close evicts it and ends the owner', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const owned = await store.ownedProxy({ n: 1 }, { lifetime });
    expect(tagOf(getKey(owned))).toBe(lifetime.id);
    const data = store.connector.dataKey(getKey(owned));
    expect(await redis.hget(store.connector.keys.object('own', getKey(owned)), 'lt')).toBe(lifetime.id);
    // Ownership works as usual meanwhile.
    const shared = await borrow(owned);
    expect(await resolve(shared)).toEqual({ n: 1 });
    await release(shared);
    await lifetime.close();
    expect(await exists(redis, data)).toBe(false);
    const err = await borrow(owned).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifetimeEndedError);
    expect((err as Error).message).toMatch(new RegExp(`key ${getKey(owned)}: its lifetime ${lifetime.id} ended.*the object was evicted`));
    await expectOwnerEnded(owned);
  });

  test('borrowed at the close: kept for its borrows, readable through them, evicted at the last release', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const owned = await store.ownedProxy([1, 2, 3], { lifetime });
    const data = store.connector.dataKey(getKey(owned));
    const a = await borrow(owned);
    const b = await borrow(owned);
    await lifetime.close();
    expect(await lifetime.done()).toBe(true);
    expect(await exists(redis, data)).toBe(true);
    expect(await resolve(b)).toEqual([1, 2, 3]);
    const err = await borrow(owned).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifetimeEndedError);
    expect((err as Error).message).toMatch(/the object is evicted when its last borrow ends/);
    await expectOwnerEnded(owned);
    await release(a);
    expect(await exists(redis, data)).toBe(true);
    await release(b);
    expect(await exists(redis, data)).toBe(false);
  });

  test('a mutable borrow at the close can still be read and released, but not update', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const owned = await store.ownedProxy({ v: 1 }, { lifetime });
    const writer = await mutBorrow(owned);
    await lifetime.close();
    expect(await resolve(writer)).toEqual({ v: 1 });
    await expect(update(writer)).rejects.toThrow(LifetimeEndedError);
    expect(isValid(writer)).toBe(true);
    await release(writer);
    expect(await exists(redis, store.connector.dataKey(getKey(owned)))).toBe(false);
  });

  test('addProxy(owned) of an object in another slot: the close evicts it, or waits for its borrow', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const free = await store.ownedProxy('unborrowed');
    const held = await store.ownedProxy('borrowed');
    await lifetime.addProxy(free, held);
    expect(await redis.hget(store.connector.keys.object('own', getKey(held)), 'lt')).toBe(lifetime.id);
    const shared = await borrow(held);
    await lifetime.close();
    expect(await exists(redis, store.connector.dataKey(getKey(free)))).toBe(false);
    expect(await resolve(shared)).toBe('borrowed');
    await expectOwnerEnded(held);
    await expectOwnerEnded(free);
    await release(shared);
    expect(await exists(redis, store.connector.dataKey(getKey(held)))).toBe(false);
  });

  test('addKey of an owned key binds it as addProxy does', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const owned = await store.ownedProxy('by key');
    await lifetime.addKey(getKey(owned));
    await lifetime.close();
    expect(await exists(redis, store.connector.dataKey(getKey(owned)))).toBe(false);
    await expect(borrow(owned)).rejects.toThrow(LifetimeEndedError);
  });

  test('intoOwned of an own member and of a foreign member: the close ends both owners', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const own = await store.proxy({ own: true }, { lifetime });
    const plain = await store.proxy({ foreign: true });
    await lifetime.addProxy(plain);
    const ownOwned = await intoOwned(own);
    const foreignOwned = await intoOwned(plain);
    const shared = await borrow(foreignOwned);
    await lifetime.close();
    expect(await exists(redis, store.connector.dataKey(getKey(ownOwned)))).toBe(false);
    await expect(borrow(ownOwned)).rejects.toThrow(LifetimeEndedError);
    // The foreign member is owned now: the close did not delete it under its borrow.
    expect(await resolve(shared)).toEqual({ foreign: true });
    await expect(mutBorrow(foreignOwned)).rejects.toThrow(LifetimeEndedError);
    await release(shared);
    expect(await exists(redis, store.connector.dataKey(getKey(foreignOwned)))).toBe(false);
  });

  test('intoOwned of a member of a closed lifetime is LifetimeEndedError', async ({ store }) => {
    const lifetime = new ContextLifetime(store);
    const member = await store.proxy('x', { lifetime });
    // Closing: mark it closing without evicting (a close that another process began).
    await store.connector.client.hset(store.connector.keys.lifetime('lt', lifetime.id), 'state', 'closing');
    await expect(intoOwned(member)).rejects.toThrow(LifetimeEndedError);
    await lifetime.close();
  });

  test('ownedProxy with an ended lifetime is LifetimeEndedError and stores nothing', async ({ store, redis, namespace }) => {
    const lifetime = new ContextLifetime(store);
    await lifetime.close();
    await expect(store.ownedProxy('late', { lifetime })).rejects.toThrow(LifetimeEndedError);
    // Closed through another handle: Redis refuses (the script checks the meta before it writes).
    const elsewhere = new ContextLifetime(store);
    await (await ContextLifetime.attach(store, elsewhere.id)).close();
    await expect(store.ownedProxy('late', { lifetime: elsewhere })).rejects.toThrow(LifetimeEndedError);
    const keys = (await namespaceKeys(redis, namespace)).filter((k) => /:(d|own|lease):/.test(k));
    expect(keys).toEqual([]);
  });

  test('a dropped owned member leaves nothing for the close', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const owned = await store.ownedProxy('dropped', { lifetime });
    await drop(owned);
    await lifetime.close();
    expect(await exists(redis, store.connector.dataKey(getKey(owned)))).toBe(false);
  });

  test('an owned object belongs to one lifetime at a time; a borrow cannot bind it', async ({ store }) => {
    const first = new ContextLifetime(store);
    const second = new ContextLifetime(store);
    const owned = await store.ownedProxy('one', { lifetime: first });
    await expect(second.addProxy(owned)).rejects.toThrow(AlreadyOwnedError);
    await first.addProxy(owned); // the same lifetime again: nothing changes
    const shared = await borrow(owned);
    await expect(second.addProxy(shared)).rejects.toThrow(InvalidOptionsError);
    await release(shared);
    await first.close();
    await second.close();
  });

  test('ownedProxy refuses evict, reads and ttl, and a lifetime that is not one', async ({ store }) => {
    await expect(store.ownedProxy('x', { evict: true } as never)).rejects.toThrow(InvalidOptionsError);
    await expect(store.ownedProxy('x', { reads: 2 } as never)).rejects.toThrow(/ownedProxy takes none of `evict`, `reads` and `ttl`/);
    await expect(store.ownedProxy('x', { lifetime: {} } as never)).rejects.toThrow(/`lifetime` must be a ContextLifetime/);
  });
});

describe('LeaseLifetime with owned members', () => {
  test('unborrowed at the lease end: gone by its TTL, the owner invalid', async ({ store, redis }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 1 });
    const owned = await store.ownedProxy('lease', { lifetime });
    const data = store.connector.dataKey(getKey(owned));
    const at = await redis.pexpiretime(data);
    const lifetimeAt = await redis.pexpiretime(store.connector.keys.lifetime('lt', lifetime.id));
    expect(at).toBeLessThanOrEqual(lifetimeAt);
    await waitUntil(async () => !(await exists(redis, data)), 'the lease ended the object');
    await expect(borrow(owned)).rejects.toThrow(LifetimeEndedError);
  });

  test('borrowed at the lease end: kept while the borrow lives, evicted at its release', async ({ store, redis }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 1 });
    const owned = await store.ownedProxy({ big: 'x' }, { lifetime });
    const data = store.connector.dataKey(getKey(owned));
    const shared = await borrow(owned);
    await waitUntil(async () => await lifetime.done(), 'the lease ran out');
    await new Promise((r) => setTimeout(r, 300));
    expect(await exists(redis, data)).toBe(true);
    expect(await resolve(shared)).toEqual({ big: 'x' });
    // The key outlives the lease only by the borrow's lease (and its margin).
    expect(await redis.pexpiretime(data)).toBeGreaterThan(Date.now());
    await expect(borrow(owned)).rejects.toThrow(LifetimeEndedError);
    await release(shared);
    expect(await exists(redis, data)).toBe(false);
  });

  test('extend moves the owner bound; the object lives past the first end', async ({ store, redis }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 1 });
    const owned = await store.ownedProxy('extended', { lifetime });
    const record = store.connector.keys.object('own', getKey(owned));
    const first = Number(await redis.hget(record, 'until'));
    await lifetime.extend(30);
    expect(Number(await redis.hget(record, 'until'))).toBeGreaterThan(first + 20_000);
    await new Promise((r) => setTimeout(r, 1300));
    expect(await resolve(owned)).toBe('extended');
    const shared = await borrow(owned);
    await release(shared);
    await lifetime.close();
    await expect(borrow(owned)).rejects.toThrow(LifetimeEndedError);
  });
});

describe('StaticLifetime with owned members', () => {
  // Leases of 1 s: the static part's heartbeat (and the owner's renewal) run every 333 ms.
  test.override({ storeOptions: { leaseTtl: 1 } });
  test('ownedProxy with the StaticLifetime: its close evicts the unborrowed and waits for the borrowed', async ({ store, redis }) => {
    const lifetime = StaticLifetime.instance();
    const free = await store.ownedProxy('free', { lifetime });
    const held = await store.ownedProxy('held', { lifetime });
    const shared = await borrow(held);
    await lifetime.close();
    expect(await exists(redis, store.connector.dataKey(getKey(free)))).toBe(false);
    expect(await resolve(shared)).toBe('held');
    await expect(borrow(held)).rejects.toThrow(LifetimeEndedError);
    await release(shared);
    expect(await exists(redis, store.connector.dataKey(getKey(held)))).toBe(false);
  });

  test('the heartbeat moves the owner bound of a static owned member: it outlives several leases', async ({ store, redis }) => {
    const owned = await store.ownedProxy('static', { lifetime: StaticLifetime.instance() });
    const record = store.connector.keys.object('own', getKey(owned));
    const first = Number(await redis.hget(record, 'until'));
    await waitUntil(async () => Number(await redis.hget(record, 'until')) > first, 'a heartbeat moved the bound', 10_000);
    await new Promise((r) => setTimeout(r, 2500));
    expect(await resolve(owned)).toBe('static');
    await drop(owned);
  });

  test('an owned member whose owner is dropped before the end: nothing left', async ({ store, redis }) => {
    const owned = await store.ownedProxy('x', { lifetime: StaticLifetime.instance() });
    await drop(owned);
    await expect(borrow(owned)).rejects.toThrow(ReferenceInvalidError);
    expect(await exists(redis, store.connector.dataKey(getKey(owned)))).toBe(false);
  });
});

describe('an owned object keeps the expiry it had', () => {
  test('intoOwned of an object with a ttl: the ttl bounds the owner; borrowed then, it stays for the borrow', async ({ store, redis }) => {
    const plain = await store.proxy({ short: true }, { ttl: 1 });
    const owned = await intoOwned(plain);
    const record = store.connector.keys.object('own', getKey(owned));
    const until = Number(await redis.hget(record, 'until'));
    expect(until).toBeGreaterThan(Date.now() - 1000);
    expect(until).toBeLessThanOrEqual(Date.now() + 1100);
    const shared = await borrow(owned);
    await waitUntil(async () => Number((await redis.time())[0]) * 1000 > until + 50, 'the ttl passed');
    const err = await borrow(owned).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifetimeEndedError);
    expect((err as Error).message).toMatch(/its own expiry \(a ttl, or the lease of a lifetime it belonged to\) passed/);
    expect(await resolve(shared)).toEqual({ short: true });
    await release(shared);
    expect(await exists(redis, store.connector.dataKey(getKey(owned)))).toBe(false);
  });

  test('an add to another lifetime after the first lease ran out (nobody closing) does not bind the ended owner', async ({ store }) => {
    const lease = new LeaseLifetime(store, { expiry: 1 });
    const owned = await store.ownedProxy('lapsed bound', { lifetime: lease });
    const shared = await borrow(owned);
    await waitUntil(() => lease.done(), 'the lease ran out');
    const other = new ContextLifetime(store);
    await other.addKey(getKey(owned));
    await expect(borrow(owned)).rejects.toThrow(new RegExp(`its lifetime ${lease.id} ended`));
    await release(shared);
    await other.close();
    expect(await store.exists(getKey(owned))).toBe(false);
  });
});
