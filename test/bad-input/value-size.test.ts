/**
 * A value larger than the server accepts (`proto-max-bulk-len`) fails with a
 * clear error naming its size and the limit, before anything is sent, so the
 * connection and the objects already stored are untouched. Runs against its
 * own redis-server started with the smallest limit Redis allows (1 MiB).
 */
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../../scripts/local-redis.js';
import { MIN_BULK_LIMIT } from '../../src/redis/limits.js';
import { ContextLifetime, RedisConnector, RedisOperationError, Store, drop, getKey, update } from '../../src/index.js';
import { afterAll, beforeAll, deleteNamespaceKeys, describe, expect, onTestFinished, test } from '../harness/fixtures.js';

const LIMIT = MIN_BULK_LIMIT; // --proto-max-bulk-len 1mb; Redis refuses anything smaller
const HEADER = 3; // bytes the library puts before a Buffer's payload

let server: LocalRedis;
let admin: Redis;

beforeAll(async () => {
  server = await startRedisServer({ args: ['--proto-max-bulk-len', '1mb'] });
  admin = new Redis(server.url);
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

/** A store on the 1 MiB server, closed and emptied when the test ends. */
function openStore(namespace: string): Store {
  const store = new Store(`size-${namespace}`, new RedisConnector({ url: server.url, namespace }));
  onTestFinished(async () => {
    await store.close();
    await deleteNamespaceKeys(admin, namespace);
  });
  return store;
}

/** A Buffer whose stored form (header + payload) is `stored` bytes. */
function storedAs(stored: number, fill = 1): Buffer {
  return Buffer.alloc(stored - HEADER, fill);
}

describe('values larger than proto-max-bulk-len', () => {
  test('the connector learns the server limit', async ({ namespace }) => {
    const store = openStore(namespace);
    expect(await store.connector.maxValueBytes()).toBe(LIMIT);
  });

  test('a put over the limit is a RedisOperationError naming the size and the limit', async ({ namespace }) => {
    const store = openStore(namespace);
    const err = await store.put(storedAs(2 * LIMIT)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisOperationError);
    expect((err as Error).message).toBe(
      'put refused: the value is 2,097,152 bytes as stored, more than the 1,048,576 bytes this Redis accepts in one value ' +
        '(its proto-max-bulk-len); nothing was written. Raise proto-max-bulk-len on the server or store smaller pieces.',
    );
  });

  test('a value one byte over the limit is refused', async ({ namespace }) => {
    const store = openStore(namespace);
    await expect(store.put(storedAs(LIMIT + 1))).rejects.toThrow(/1,048,577 bytes as stored, more than the 1,048,576 bytes/);
  });

  test('a value whose stored form is exactly the limit is stored and read back', async ({ namespace }) => {
    const store = openStore(namespace);
    const value = storedAs(LIMIT, 7);
    const key = await store.put(value);
    expect(Buffer.compare((await store.get<Buffer>(key))!, value)).toBe(0);
    await store.evict(key);
  });

  test('objects stored before an oversized put are intact and the connection keeps working', async ({ namespace }) => {
    const store = openStore(namespace);
    const small = await store.put({ a: 1 });
    const large = await store.put(storedAs(LIMIT - 10, 2));
    await expect(store.put(storedAs(3 * LIMIT))).rejects.toThrow(RedisOperationError);
    expect(await store.get(small)).toEqual({ a: 1 });
    expect(Buffer.compare((await store.get<Buffer>(large))!, storedAs(LIMIT - 10, 2))).toBe(0);
    expect(await store.put('after')).toBeTypeOf('string');
    await store.evict(small);
    await store.evict(large);
  });

  test('gets in flight on the same connection are not disturbed by an oversized put', async ({ namespace }) => {
    const store = openStore(namespace);
    const keys = await store.putBatch([1, 2, 3]);
    const results = await Promise.allSettled([store.get(keys[0]!), store.put(storedAs(2 * LIMIT)), store.get(keys[1]!), store.get(keys[2]!)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(results.filter((r) => r.status === 'fulfilled').map((r) => r.value)).toEqual([1, 2, 3]);
    for (const k of keys) await store.evict(k);
  });

  test('putBatch with one oversized value fails naming it and writes none of the batch', async ({ namespace }) => {
    const store = openStore(namespace);
    const err = await store.putBatch([{ a: 1 }, storedAs(LIMIT + 100), 'c']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisOperationError);
    expect((err as Error).message).toMatch(/^putBatch refused: value 1 of the batch is 1,048,676 bytes as stored/);
    expect(await admin.keys(`${namespace}:{*`)).toEqual([]);
  });

  test('an oversized ephemeral proxy is refused the same way', async ({ namespace }) => {
    const store = openStore(namespace);
    await expect(store.proxy(storedAs(2 * LIMIT), { evict: true })).rejects.toThrow(/proto-max-bulk-len/);
    expect(await admin.keys(`${namespace}:{*`)).toEqual([]);
  });

  test('the limit is learned with one CONFIG GET per connection, not per put', async ({ namespace }) => {
    // MONITOR does not show CONFIG (an admin command): count calls in INFO commandstats.
    await admin.config('RESETSTAT');
    const store = openStore(namespace);
    const keys: string[] = [];
    for (let i = 0; i < 3; i++) keys.push(await store.put(storedAs(LIMIT - 1000)), await store.put(i));
    const stats = await admin.info('commandstats');
    const calls = (command: string) => Number(new RegExp(`^cmdstat_${command.replace('|', '\\|')}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
    expect(calls('config|get')).toBe(1);
    // The six puts, and the generation marker's SET NX at connect (src/redis/generation.ts).
    expect(calls('set')).toBe(7);
    for (const k of keys) await store.evict(k);
  });

  test('a new connection learns a changed limit', async ({ namespace }) => {
    const store = openStore(namespace);
    expect(await store.connector.maxValueBytes()).toBe(LIMIT);
    await admin.config('SET', 'proto-max-bulk-len', String(2 * LIMIT));
    try {
      const client = store.connector.client as Redis;
      const ready = new Promise((resolve) => client.once('ready', resolve));
      client.disconnect(true);
      await ready;
      expect(await store.connector.maxValueBytes()).toBe(2 * LIMIT);
      const key = await store.put(storedAs(LIMIT + 100));
      expect((await store.get<Buffer>(key))!.length).toBe(LIMIT + 100 - HEADER);
      await store.evict(key);
    } finally {
      await admin.config('SET', 'proto-max-bulk-len', String(LIMIT));
    }
  });
});

describe('values over the limit on the lifetime and ownership paths', () => {
  test('a put under a ContextLifetime over the limit is refused and the lifetime keeps its members', async ({ namespace }) => {
    const store = openStore(namespace);
    const lifetime = new ContextLifetime(store);
    const small = await store.put('small', { lifetime });
    await expect(store.put(storedAs(2 * LIMIT), { lifetime })).rejects.toThrow(/^put refused: the value is 2,097,152 bytes/);
    expect(await store.get(small)).toBe('small');
    await lifetime.close();
    expect(await store.exists(small)).toBe(false);
  });

  test('ownedProxy and update over the limit are refused before anything is sent', async ({ namespace }) => {
    const store = openStore(namespace);
    await expect(store.ownedProxy(storedAs(2 * LIMIT))).rejects.toThrow(/^ownedProxy refused: the value is 2,097,152 bytes/);
    const owned = await store.ownedProxy({ small: true });
    (owned as unknown as { big: Buffer }).big = storedAs(2 * LIMIT);
    await expect(update(owned)).rejects.toThrow(/^update refused: the value is \d[\d,]* bytes/);
    delete (owned as unknown as { big?: Buffer }).big;
    expect(await store.get(getKey(owned))).toEqual({ small: true });
    await drop(owned);
  });
});

describe('the run\'s Redis', () => {
  test('a connector learns the same limit CONFIG GET shows', async ({ redisUrl, namespace, redis }) => {
    const [, shown] = (await redis.config('GET', 'proto-max-bulk-len')) as [string, string];
    const connector = new RedisConnector({ url: redisUrl, namespace });
    try {
      expect(await connector.maxValueBytes()).toBe(Number(shown));
    } finally {
      await connector.close();
    }
  });
});

describe('values over the store chunkSize on a server with a small proto-max-bulk-len', () => {
  test('are chunked in pieces the server takes (its limit, when smaller than chunkSize) and read back', async ({ namespace }) => {
    // Default chunkSize (4 MiB) is over this server's 1 MiB limit.
    const store = openStore(namespace);
    const value = Buffer.alloc(5 * LIMIT + 7, 9);
    const key = await store.put(value);
    const manifest = await admin.hget(store.connector.dataKey(key), 'm');
    expect(manifest?.split(':')[3]).toBe(String(LIMIT));
    expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
    // A value between the limit and chunkSize is refused as before (nothing written).
    await expect(store.put(storedAs(2 * LIMIT))).rejects.toThrow(/proto-max-bulk-len/);
  });
});
