/**
 * Chunked objects (docs/large-objects.md): values over the store's
 * chunkSize, through the plain APIs, on a single Redis and a Cluster. A
 * 1 KiB chunkSize keeps the values small and the tests fast.
 */
import { randomBytes } from 'node:crypto';
import { InvalidOptionsError, ProxyResolveMissingKeyError, RedisConnector, Store, resolve, toRef, fromRef } from '../../src/index.js';
import { connectionOptions, describe, expect, test } from '../harness/store-fixture.js';
import { CHUNK, chunkedStore, watchChunkReads } from './util.js';

async function redisKeysOf(redis: { keys?: unknown }, store: Store): Promise<string[]> {
  void redis;
  const found: string[] = [];
  const client = store.connector.client;
  const nodes = 'nodes' in client ? client.nodes('master') : [client];
  for (const node of nodes) found.push(...(await node.keys(`${store.namespace}:*`)));
  return found.filter((k) => !k.includes(':gen') && !k.endsWith('generation'));
}

describe('chunked put and get', () => {
  test('config() reports chunkSize; a bad chunkSize is refused', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace);
    try {
      expect(store.config().chunkSize).toBe(CHUNK);
    } finally {
      await store.close();
    }
    const connector = new RedisConnector({ ...connectionOptions(target), namespace });
    try {
      for (const bad of [1023, 1.5, '4096', -1, 2 ** 40]) {
        expect(() => new Store(`bad-${namespace}`, connector, { chunkSize: bad as number })).toThrow(InvalidOptionsError);
      }
      expect(new Store(`default-${namespace}`, connector).config().chunkSize).toBe(4 * 1024 * 1024);
    } finally {
      await connector.close();
    }
  });

  test('values around the chunk boundary come back byte for byte; the large ones are one hash', async ({ target, namespace, redis }) => {
    const store = chunkedStore(target, namespace);
    try {
      // Stored bytes = 3-byte header + payload.
      for (const size of [0, CHUNK - 4, CHUNK - 3, CHUNK - 2, CHUNK, CHUNK + 1, 3 * CHUNK - 3, 3 * CHUNK + 5, 40 * CHUNK + 7]) {
        const value = randomBytes(size);
        const key = await store.put(value);
        const back = await store.get<Buffer>(key);
        expect(Buffer.compare(back as Buffer, value), `size ${size}`).toBe(0);
        const type = await redis.type(store.connector.dataKey(key));
        expect(type, `size ${size}`).toBe(size + 3 > CHUNK ? 'hash' : 'string');
        expect(await store.exists(key)).toBe(true);
        await store.evict(key);
        expect(await store.exists(key)).toBe(false);
        expect(await store.get(key)).toBeUndefined();
      }
      // Objects (msgpack), typed arrays and a batch with large and small values.
      const big = { rows: Array.from({ length: 500 }, (_, i) => ({ i, s: `row ${i}` })) };
      const floats = new Float64Array(1000).map((_, i) => i / 3);
      const keys = await store.putBatch([big, 'small', floats, randomBytes(10)]);
      const back = await Promise.all(keys.map((k) => store.get(k)));
      expect(back[0]).toEqual(big);
      expect(back[1]).toBe('small');
      expect(back[2]).toEqual(floats);
      expect(await store.connector.getBatch(keys).then((b) => b.map((x) => x?.length))).toEqual(
        await Promise.all(keys.map(async (k) => (await store.connector.get(k))?.length)),
      );
      expect(await redis.type(store.connector.dataKey(keys[0] as string))).toBe('hash');
      for (const k of keys) await store.evict(k);
      expect(await redisKeysOf(redis, store)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  test('ttl and defaultTtl apply to a chunked object', async ({ target, namespace, redis }) => {
    const store = chunkedStore(target, namespace, undefined, { defaultTtl: 60 });
    try {
      const key = await store.put(randomBytes(5 * CHUNK), { ttl: 30 });
      const pttl = await redis.pttl(store.connector.dataKey(key));
      expect(pttl).toBeGreaterThan(20_000);
      expect(pttl).toBeLessThanOrEqual(30_000);
      const other = await store.put(randomBytes(5 * CHUNK));
      expect(await redis.pttl(store.connector.dataKey(other))).toBeGreaterThan(30_000);
      const short = await store.put(randomBytes(3 * CHUNK), { ttl: 0.05 });
      await new Promise((r) => setTimeout(r, 120));
      expect(await store.get(short)).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  test('proxy, refs resolved by another store, proxyFromKey', async ({ target, namespace }) => {
    const name = `shared-${namespace}`;
    const a = chunkedStore(target, namespace, name);
    try {
      const value = randomBytes(7 * CHUNK + 11);
      const p = await a.proxy(value, { populateTarget: false });
      const ref = JSON.stringify(toRef(p));
      expect(Buffer.compare(await resolve(fromRef<Buffer>(JSON.parse(ref))), value)).toBe(0);
      const key = JSON.parse(ref).key as string;
      const q = await a.proxyFromKey<Buffer>(key);
      expect(Buffer.isBuffer(await resolve(q))).toBe(true);
      expect(Buffer.compare(await resolve(q), value)).toBe(0);
      // Another store on the same namespace, with a different chunkSize, reads it too.
      const b = new Store(`other-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), { chunkSize: 4096 });
      try {
        expect(Buffer.compare((await b.get<Buffer>(key)) as Buffer, value)).toBe(0);
      } finally {
        await b.close();
      }
      await a.evict(key);
    } finally {
      await a.close();
    }
  });
});

describe('the other put paths and the cache', () => {
  test('proxyBatch and lockedProxy of large values; a cached chunked value is dropped when another store evicts it', async ({ target, namespace }) => {
    const name = `paths-${namespace}`;
    const store = chunkedStore(target, namespace, name, { cacheSize: 8 });
    const other = new Store(`other-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), { chunkSize: CHUNK });
    try {
      const values = [randomBytes(4 * CHUNK), randomBytes(10), randomBytes(2 * CHUNK)];
      const proxies = await store.proxyBatch(values, { populateTarget: false, ttl: 60 });
      const keys: string[] = [];
      for (const [i, p] of proxies.entries()) {
        expect(Buffer.compare(await resolve(p), values[i] as Buffer)).toBe(0);
        keys.push(toRef(p).key);
      }
      const locked = await store.lockedProxy(values[0] as Buffer, { populateTarget: false });
      expect(Buffer.compare(await resolve(locked.unlock()), values[0] as Buffer)).toBe(0);
      keys.push(toRef(locked.unlock()).key);
      // Cached here, evicted there: the invalidation drops it (never stale for long).
      await store.ready();
      expect(Buffer.isBuffer(await store.get(keys[0] as string))).toBe(true);
      expect(store.isCached(keys[0] as string)).toBe(true);
      await other.evict(keys[0] as string);
      const deadline = Date.now() + 5000;
      while (store.isCached(keys[0] as string) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(await store.get(keys[0] as string)).toBeUndefined();
      for (const k of keys) await store.evict(k);
    } finally {
      await other.close();
      await store.close();
    }
  });
});

describe('getRange', () => {
  test('reads [start, end) of chunked and non-chunked Buffers; bad ranges are refused', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace);
    try {
      const large = randomBytes(5 * CHUNK + 100);
      const small = randomBytes(100);
      const typed = new Uint8Array(randomBytes(3 * CHUNK));
      const [lk, sk, tk] = await store.putBatch([large, small, typed]);
      const cases: [number, number][] = [
        [0, 0],
        [0, 10],
        [CHUNK - 5, CHUNK + 5],
        [CHUNK - 3, CHUNK - 3 + 1],
        [2 * CHUNK - 3, 4 * CHUNK],
        [0, large.length],
        [large.length, large.length],
      ];
      for (const [s, e] of cases) {
        expect(Buffer.compare(await store.getRange(lk as string, s, e), large.subarray(s, e)), `${s}..${e}`).toBe(0);
      }
      expect(Buffer.compare(await store.getRange(sk as string, 10, 60), small.subarray(10, 60))).toBe(0);
      expect(Buffer.compare(await store.getRange(tk as string, CHUNK - 20, CHUNK + 20), Buffer.from(typed).subarray(CHUNK - 20, CHUNK + 20))).toBe(0);
      for (const [s, e] of [[-1, 2], [5, 4], [0, large.length + 1], [1.5, 3], [0, Number.NaN]] as [number, number][]) {
        await expect(store.getRange(lk as string, s, e), `${s}..${e}`).rejects.toThrow(InvalidOptionsError);
      }
      await expect(store.getRange(sk as string, 0, 101)).rejects.toThrow(/100 bytes/);
      const obj = await store.put({ a: 1 });
      await expect(store.getRange(obj, 0, 1)).rejects.toThrow(/shape object/);
      await expect(store.getRange('missing-key', 0, 1)).rejects.toThrow(ProxyResolveMissingKeyError);
      // Only the chunks the range lies in are read (HGET of a chunk field, raw or through ioredis).
      const { fields, restore } = watchChunkReads(store);
      try {
        await store.getRange(lk as string, 2 * CHUNK, 2 * CHUNK + 10); // stored bytes 2*CHUNK+3.. : chunk 2
        expect(fields.map((f) => f.split(':')[1])).toEqual(['2']);
        fields.length = 0;
        await store.getRange(lk as string, 3 * CHUNK - 10, 3 * CHUNK); // spans chunks 2 and 3
        expect(fields.map((f) => f.split(':')[1]).sort()).toEqual(['2', '3']);
      } finally {
        restore();
      }
      for (const k of [lk, sk, tk, obj]) await store.evict(k as string);
    } finally {
      await store.close();
    }
  });
});
