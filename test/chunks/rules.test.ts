/**
 * Chunked objects under the other rules: lifetimes (close, lease expiry),
 * ownership (borrow reads, update, clone, drop, an owned lifetime member).
 */
import { randomBytes } from 'node:crypto';
import {
  ContextLifetime,
  LeaseLifetime,
  borrow,
  clone,
  drop,
  fromRef,
  getKey,
  intoOwned,
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
} from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { CHUNK, chunkedStore, keysOf } from './util.js';


describe('chunked objects in lifetimes', () => {
  test('a ContextLifetime close evicts its chunked members (put, putBatch, reads: 2, ttl)', async ({ target, namespace, redis }) => {
    const store = chunkedStore(target, namespace, `ctx-${namespace}`);
    try {
      const lifetime = new ContextLifetime(store);
      const value = randomBytes(6 * CHUNK);
      const a = await store.put(value, { lifetime });
      const [b, c] = await store.putBatch([randomBytes(3 * CHUNK), 'small'], { lifetime });
      const d = await store.put(randomBytes(2 * CHUNK), { lifetime, reads: 2, ttl: 60 });
      expect(await redis.type(store.connector.dataKey(a))).toBe('hash');
      expect(Buffer.compare((await store.get<Buffer>(a)) as Buffer, value)).toBe(0);
      expect(await store.get(c as string)).toBe('small');
      expect(await redis.pttl(store.connector.dataKey(d))).toBeGreaterThan(50_000);
      for (const k of [a, b, c, d]) expect(await store.exists(k as string)).toBe(true);
      await lifetime.close();
      for (const k of [a, b, c, d]) expect(await store.exists(k as string)).toBe(false);
      expect((await keysOf(store)).filter((k) => !k.endsWith(':lt'))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  test('a LeaseLifetime gives its chunked member the lease end, and its expiry removes it', async ({ target, namespace, redis }) => {
    const store = chunkedStore(target, namespace, `lease-${namespace}`);
    try {
      const lifetime = new LeaseLifetime(store, { expiry: 0.5 });
      const key = await store.put(randomBytes(4 * CHUNK), { lifetime });
      const pttl = await redis.pttl(store.connector.dataKey(key));
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(500);
      await new Promise((r) => setTimeout(r, 700));
      expect(await store.exists(key)).toBe(false);
      await lifetime.close();
    } finally {
      await store.close();
    }
  });
});

describe('futures with chunked results', () => {
  test('setResult of a large value wakes a waiter with it; an evict future is consumed once', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace, `future-${namespace}`);
    try {
      const future = await store.future<Buffer>();
      const value = randomBytes(5 * CHUNK + 3);
      const waiting = future.result({ timeout: 20 });
      await future.setResult(value);
      expect(Buffer.compare(await waiting, value)).toBe(0);
      expect(Buffer.compare((await store.get<Buffer>(future.key)) as Buffer, value)).toBe(0);
      await store.evict(future.key);
      const once = await store.future<Buffer>({ evict: true });
      await once.setResult(value);
      expect(Buffer.compare(await once.result({ timeout: 20 }), value)).toBe(0);
      await expect(once.result({ timeout: 1 })).rejects.toThrow();
      await store.connector.graceReleased();
      expect((await keysOf(store)).filter((k) => !k.includes(':tomb:') && !k.includes(':sig:'))).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe('futures with chunked results, set before the wait', () => {
  test("the wait's GET meets the chunked hash and the value is read in full, also once the signal is gone", async ({ target, namespace, redis }) => {
    const store = chunkedStore(target, namespace, `future-before-${namespace}`);
    try {
      const future = await store.future<Buffer>();
      const value = randomBytes(4 * CHUNK + 5);
      await future.setResult(value);
      expect(Buffer.compare(await future.result({ timeout: 20 }), value)).toBe(0);
      await redis.del(store.connector.keys.object('sig', future.key));
      expect(Buffer.compare(await future.result({ timeout: 20 }), value)).toBe(0);
      await store.evict(future.key);
    } finally {
      await store.close();
    }
  });
});

describe('owned chunked objects', () => {
  test('ownedProxy, borrow reads in another store, update (chunked to chunked and to small), clone, drop', async ({ target, namespace, redis }) => {
    const name = `owned-${namespace}`;
    const store = chunkedStore(target, namespace, name);
    try {
      const first = { v: 1, blob: randomBytes(5 * CHUNK) };
      const owned = await store.ownedProxy(first, { populateTarget: false });
      const key = getKey(owned);
      expect(await redis.type(store.connector.dataKey(key))).toBe('hash');
      // A borrow, resolved through its ref (another resolve path: handleRead).
      const shared = fromRef<typeof first>(JSON.parse(JSON.stringify(toRef(await borrow(owned)))));
      const read = await resolve(shared);
      expect(read.v).toBe(1);
      expect(Buffer.compare(Buffer.from(read.blob), first.blob)).toBe(0);
      await release(shared as never);
      // Update through a mutable borrow: the whole hash is swapped (new write id).
      const writer = await mutBorrow(owned);
      const before = await redis.hget(store.connector.dataKey(key), 'm');
      const blob2 = randomBytes(7 * CHUNK);
      (await resolve(writer)).blob = blob2;
      (await resolve(writer)).v = 2;
      await update(writer);
      const after = await redis.hget(store.connector.dataKey(key), 'm');
      expect(after).not.toBe(before);
      expect((await redis.hkeys(store.connector.dataKey(key))).some((f) => before !== null && f.startsWith(`${before.split(':')[4]}:`))).toBe(false);
      await release(writer);
      const reader = fromRef<typeof first>(JSON.parse(JSON.stringify(toRef(await borrow(owned)))));
      const got = await resolve(reader);
      expect(got.v).toBe(2);
      expect(Buffer.compare(Buffer.from(got.blob), blob2)).toBe(0);
      await release(reader as never);
      // Clone: server-side, every chunk.
      const copy = await clone(owned);
      const copyKey = getKey(copy);
      expect(await redis.type(store.connector.dataKey(copyKey))).toBe('hash');
      const copied = (await store.get<typeof first>(copyKey)) as typeof first;
      expect(Buffer.compare(Buffer.from(copied.blob), blob2)).toBe(0);
      // An update to a small value replaces the hash with a string.
      const small = await mutBorrow(owned);
      (await resolve(small)).blob = Buffer.from('tiny');
      await update(small);
      await release(small);
      expect(await redis.type(store.connector.dataKey(key))).toBe('string');
      expect(((await store.get<typeof first>(key)) as typeof first).blob.toString()).toBe('tiny');
      await drop(copy);
      await drop(owned);
      expect(await store.exists(key)).toBe(false);
      expect(await store.exists(copyKey)).toBe(false);
    } finally {
      await store.close();
    }
  });

  test('an update from a small value to a chunked one keeps the object and its expiry', async ({ target, namespace, redis }) => {
    const store = chunkedStore(target, namespace, `grow-${namespace}`);
    try {
      const owned = await store.ownedProxy({ blob: Buffer.from('small') }, { populateTarget: false });
      const key = getKey(owned);
      expect(await redis.type(store.connector.dataKey(key))).toBe('string');
      const writer = await mutBorrow(owned);
      const big = randomBytes(4 * CHUNK);
      (await resolve(writer)).blob = big;
      await update(writer);
      await release(writer);
      expect(await redis.type(store.connector.dataKey(key))).toBe('hash');
      expect(await redis.pttl(store.connector.dataKey(key))).toBeGreaterThan(0);
      const reader = await borrow(owned);
      expect(Buffer.compare(Buffer.from((await resolve(reader)).blob), big)).toBe(0);
      await release(reader);
      await drop(owned);
      // (Its recently finished calls stay, with a TTL, for resends.)
      expect((await keysOf(store)).filter((k) => !k.includes(':done:'))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  test('an owned Buffer over chunkSize (chunked from its own memory): update of its bytes, read back whole', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace, `ownbuf-${namespace}`);
    try {
      const value = randomBytes(6 * CHUNK + 5);
      const owned = await store.ownedProxy(value, { populateTarget: false });
      const writer = await mutBorrow(owned);
      const target = await resolve(writer);
      target[0] = (target[0] as number) ^ 0xff;
      target[5 * CHUNK] = (target[5 * CHUNK] as number) ^ 0xff;
      const expected = Buffer.from(target);
      await update(writer);
      await release(writer);
      expect(Buffer.compare((await store.get<Buffer>(getKey(owned))) as Buffer, expected)).toBe(0);
      expect(Buffer.compare((await store.get<Buffer>(getKey(owned))) as Buffer, value)).not.toBe(0);
      await drop(owned);
    } finally {
      await store.close();
    }
  });

  test('intoOwned of a proxy of a chunked value: owned reads get it whole', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace, `into-${namespace}`);
    try {
      const value = randomBytes(3 * CHUNK + 1);
      const owned = await intoOwned(await store.proxy(value, { populateTarget: false }));
      const reader = await borrow(owned);
      expect(Buffer.compare(Buffer.from(await resolve(reader)), value)).toBe(0);
      await release(reader);
      await drop(owned);
    } finally {
      await store.close();
    }
  });

  test('an owned chunked member of a lifetime goes with its close', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace, `owned-lt-${namespace}`);
    try {
      const lifetime = new ContextLifetime(store);
      const value = randomBytes(3 * CHUNK);
      const owned = await store.ownedProxy(value, { lifetime, populateTarget: false });
      const key = getKey(owned);
      const shared = await borrow(owned);
      expect(Buffer.compare(Buffer.from(await resolve(shared)), value)).toBe(0);
      await release(shared);
      await lifetime.close();
      expect(await store.exists(key)).toBe(false);
    } finally {
      await store.close();
    }
  });
});
