/**
 * The cache's invalidation connection dropped (issue 17): on a redis-server
 * this file starts, the tracking connection is killed (CLIENT KILL) and the
 * object is changed while it is down; the next read must not be the cached
 * copy. The cache serves again once tracking is back, and is kept fresh
 * again. Also: a FLUSHALL (Redis sends a null invalidation) empties it.
 */
import { Redis } from 'ioredis';
import { RedisConnector, Store } from '../src/index.js';
import { serialize } from '../src/serialize.js';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from './harness/fixtures.js';

let server: LocalRedis;
let raw: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  raw = new Redis(server.url);
});

afterAll(async () => {
  raw?.disconnect();
  await server?.stop();
});

function store(namespace: string): Store {
  const s = new Store(`drop-${namespace}`, new RedisConnector({ url: server.url, namespace }), { cacheSize: 16, metrics: true });
  onTestFinished(async () => {
    await s.close();
  });
  return s;
}

/** The ids of the cache's tracking connections (CLIENT LIST, by their connection name). */
async function trackingIds(): Promise<string[]> {
  const list = (await raw.client('LIST')) as string;
  return list
    .split('\n')
    .filter((line) => line.includes('name=proxystore-cache'))
    .map((line) => /id=(\d+)/.exec(line)?.[1] as string);
}

/** Read until the cache serves `key` again (a hit), for at most 5 s. */
async function untilHit(s: Store, key: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const before = s.metrics()?.cacheHit?.count ?? 0;
    await s.get(key);
    if ((s.metrics()?.cacheHit?.count ?? 0) > before) return;
    if (Date.now() > deadline) throw new Error('the cache never served again');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the invalidation connection drops', () => {
  test('a change made while it is down is never hidden by the cache; caching and invalidation resume after', async ({ namespace }) => {
    const a = store(namespace);
    await a.ready();
    const key = await a.put({ v: 1 });
    const dataKey = a.connector.dataKey(key);
    await untilHit(a, key);
    const [id] = await trackingIds();
    expect(id).toBeDefined();

    // Another writer changes the object while A's tracking connection is down.
    expect(await raw.client('KILL', 'ID', id as string)).toBe(1);
    await raw.set(dataKey, serialize({ v: 2 }), 'KEEPTTL');
    expect(await a.get(key)).toEqual({ v: 2 });
    expect(a.isCached(key)).toBe(false);
    // While tracking is down (or just back), reads go to Redis; each sees the latest write.
    for (let v = 3; v <= 6; v++) {
      await raw.set(dataKey, serialize({ v }));
      expect(await a.get(key)).toEqual({ v });
    }

    // Back: a new tracking connection, the cache serves again...
    await untilHit(a, key);
    const [again] = await trackingIds();
    expect(again).toBeDefined();
    expect(again).not.toBe(id);
    // ...and is invalidated again.
    await raw.set(dataKey, serialize({ v: 7 }));
    const since = Date.now();
    while ((await a.get<{ v: number }>(key))?.v !== 7) {
      expect(Date.now() - since).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 2));
    }
    await a.evict(key);
  });

  test('killed again and again: the read right after each change made while it was down is never the cached copy', async ({ namespace }) => {
    const a = store(namespace);
    await a.ready();
    const key = await a.put({ v: 0 });
    const dataKey = a.connector.dataKey(key);
    const got: number[] = [];
    for (let v = 1; v <= 10; v++) {
      await untilHit(a, key);
      for (const id of await trackingIds()) await raw.client('KILL', 'ID', id);
      await raw.set(dataKey, serialize({ v }));
      got.push((await a.get<{ v: number }>(key))?.v ?? -1);
    }
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await a.evict(key);
  });

  test('FLUSHALL empties every cache (a null invalidation)', async ({ namespace }) => {
    const a = store(namespace);
    await a.ready();
    const key = await a.put({ v: 1 });
    await untilHit(a, key);
    await raw.flushall();
    const since = Date.now();
    while ((await a.get(key)) !== undefined) {
      expect(Date.now() - since).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(a.isCached(key)).toBe(false);
  });
});
