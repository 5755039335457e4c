/**
 * getStream has backpressure (issue 16): a consumer that stops reading stops
 * the reads from Redis, a few chunks ahead at most, instead of the process
 * buffering the whole object. Seen on the wire with MONITOR, on a
 * redis-server this file starts (on the run's shared Redis, MONITOR would
 * also stream other files' megabytes of chunk writes, and our lines could
 * arrive after the count): the chunk reads (HGET of the data key) of a
 * stalled consumer in another process are counted.
 */
import { Redis } from 'ioredis';
import { RedisConnector, Store } from '../src/index.js';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import { childEnv, killAllChildren, spawnChild } from './harness/child.js';
import { openMonitor } from './harness/monitor.js';
import { afterAll, afterEach, beforeAll, expect, targetEnv, test } from './harness/store-fixture.js';

let server: LocalRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  redis = new Redis(server.url);
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

const CHUNK = 64 * 1024;

afterEach(killAllChildren);

test('a consumer that stalls after its first piece makes the stream read a few chunks, not all 40', { timeout: 60_000 }, async ({ namespace }) => {
  const redisUrl = server.url;
  const target = { kind: 'single' as const, url: redisUrl };
  const store = new Store(`backpressure-${namespace}`, new RedisConnector({ url: redisUrl, namespace }), { chunkSize: CHUNK });
  try {
    const key = await store.put(Buffer.alloc(40 * CHUNK, 6));
    const data = store.connector.dataKey(key);
    const chunkReads: string[] = [];
    const stop = await openMonitor(redis, (args) => {
      if (args[0]?.toLowerCase() === 'hget' && args[1] === data) chunkReads.push(args[2] as string);
    });
    try {
      const child = spawnChild('test/children/chunk-reader.ts', { env: { ...childEnv({ redisUrl, namespace }), ...targetEnv(target) }, args: ['stall', key] });
      await child.waitForMessage((m) => 'started' in (m as object), 30_000);
      // Give a stream without backpressure time to read everything (40 small chunks on loopback).
      let seen = -1;
      for (let i = 0; i < 20 && seen !== chunkReads.length; i++) {
        seen = chunkReads.length;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(chunkReads.length, 'MONITOR saw no chunk read').toBeGreaterThan(0);
      expect(chunkReads.length, `chunk reads of a stalled consumer: ${chunkReads.join(', ')}`).toBeLessThanOrEqual(6);
      child.kill('SIGKILL');
      await child.exited;
    } finally {
      stop();
    }
    await store.evict(key);
  } finally {
    await store.close();
  }
});
