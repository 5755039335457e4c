/**
 * The raw chunk connection's fallback (src/redis/raw.ts): a link killed in
 * the middle of a transfer (CLIENT KILL), and a link the server refuses,
 * leave the transfer to ioredis (or to a new link), with the same bytes and
 * the same rules. Server-wide commands, so on a redis-server of this file's own.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../../scripts/local-redis.js';
import { RedisConnector, RedisOperationError, Store } from '../../src/index.js';
import { afterAll, beforeAll, describe, expect, test } from '../harness/fixtures.js';
import { CHUNK } from './util.js';

let server: LocalRedis;
let admin: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

function storeOn(namespace: string): Store {
  return new Store(`raw-fallback-${namespace}`, new RedisConnector({ url: server.url, namespace }), { chunkSize: CHUNK, cacheSize: 0 });
}

type RawMethod = 'readInto' | 'writeChunk';

/** Before the `nth` call of the raw method `name`, CLIENT KILL every raw link of the store. */
function killAt(store: Store, name: RawMethod, nth: number): { killed: () => number } {
  const raw = store.connector.raw as unknown as Record<RawMethod, (...args: unknown[]) => Promise<boolean>>;
  const original = raw[name];
  let calls = 0;
  let killed = 0;
  raw[name] = async function (this: unknown, ...args: unknown[]) {
    if (++calls === nth) {
      for (const port of store.connector.raw.localPorts()) killed += Number(await admin.call('CLIENT', 'KILL', 'ADDR', `127.0.0.1:${port}`, 'SKIPME', 'yes').catch(() => 0));
    }
    return original.apply(this, args);
  };
  return { killed: () => killed };
}

/** Keys of the namespace without a TTL (an object put without one is expected; a staging hash never). */
async function stagesWithoutTtl(namespace: string): Promise<string[]> {
  const keys = await admin.keys(`${namespace}:{*`);
  const out: string[] = [];
  for (const k of keys) if (k.includes(':stage:') && (await admin.pttl(k)) < 0) out.push(k);
  return out;
}

describe('the raw chunk connection falls back to ioredis', () => {
  test('a link killed (CLIENT KILL) in the middle of a get: the get still returns the bytes', async ({ namespace }) => {
    const store = storeOn(namespace);
    try {
      const value = randomBytes(200 * CHUNK);
      const key = await store.put(value);
      const opened = store.connector.raw.stats.opened;
      const fallbacks = store.connector.raw.stats.fallbacks;
      const kill = killAt(store, 'readInto', 50);
      expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
      expect(kill.killed()).toBeGreaterThan(0);
      // The killed link carried nothing more: its chunks went through ioredis, or through a new link.
      const { stats } = store.connector.raw;
      expect(stats.fallbacks - fallbacks + (stats.opened - opened)).toBeGreaterThan(0);
      // And the stream and range reads still work after it.
      const parts: Buffer[] = [];
      for await (const part of store.getStream(key)) parts.push(part as Buffer);
      expect(Buffer.compare(Buffer.concat(parts), value)).toBe(0);
      await store.evict(key);
    } finally {
      await store.close();
    }
  });

  test('a link killed in the middle of a put and of a putStream: the objects are whole, no staging hash is left without a TTL', async ({ namespace }) => {
    const store = storeOn(namespace);
    try {
      await store.put(randomBytes(4 * CHUNK)).then((k) => store.evict(k)); // a link is open
      const value = randomBytes(150 * CHUNK + 11);
      let kill = killAt(store, 'writeChunk', 40);
      const key = await store.put(value);
      expect(kill.killed()).toBeGreaterThan(0);
      expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
      (store.connector.raw as unknown as { writeChunk: unknown }).writeChunk = Object.getPrototypeOf(store.connector.raw).writeChunk;
      kill = killAt(store, 'writeChunk', 40);
      const parts = [];
      for (let at = 0; at < value.length; at += 1000) parts.push(value.subarray(at, at + 1000));
      const streamed = await store.putStream(Readable.from(parts));
      expect(kill.killed()).toBeGreaterThan(0);
      expect(Buffer.compare((await store.get<Buffer>(streamed)) as Buffer, value)).toBe(0);
      expect(await stagesWithoutTtl(namespace)).toEqual([]);
      await store.evict(key);
      await store.evict(streamed);
    } finally {
      await store.close();
    }
  });

  test('a link the server refuses (a password set after ioredis authenticated): every chunk goes through ioredis, byte for byte', async ({ namespace }) => {
    const store = storeOn(namespace);
    try {
      await store.exists('warm-up'); // ioredis connected (and authenticated as the default user)
      await admin.config('SET', 'requirepass', randomBytes(8).toString('hex'));
      try {
        const value = randomBytes(20 * CHUNK + 5);
        const key = await store.put(value);
        expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
        expect(Buffer.compare(await store.getRange(key, CHUNK - 10, 3 * CHUNK + 10), value.subarray(CHUNK - 10, 3 * CHUNK + 10))).toBe(0);
        const streamed = await store.putStream(Readable.from([value]));
        const parts: Buffer[] = [];
        for await (const part of store.getStream(streamed)) parts.push(part as Buffer);
        expect(Buffer.compare(Buffer.concat(parts), value)).toBe(0);
        const { stats } = store.connector.raw;
        expect(stats.raw).toBe(0);
        expect(stats.fallbacks).toBeGreaterThan(20);
        await store.evict(key);
        await store.evict(streamed);
      } finally {
        await admin.config('SET', 'requirepass', '');
      }
    } finally {
      await store.close();
    }
  });

  test('a store on database 3: the raw link selects it (SELECT), so the chunks are written and read there', async ({ namespace }) => {
    const store = new Store(`raw-db-${namespace}`, new RedisConnector({ url: `${server.url}/3`, namespace }), { chunkSize: CHUNK, cacheSize: 0 });
    const db3 = new Redis(`${server.url}/3`);
    try {
      const value = randomBytes(9 * CHUNK);
      const key = await store.put(value);
      expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
      expect(store.connector.raw.stats.raw).toBeGreaterThanOrEqual(2 * 10);
      expect(store.connector.raw.stats.fallbacks).toBe(0);
      expect(await db3.type(store.connector.dataKey(key))).toBe('hash');
      expect(await admin.exists(store.connector.dataKey(key))).toBe(0);
      await store.evict(key);
    } finally {
      db3.disconnect();
      await store.close();
    }
  });

  test('a password the server does not ask for: accepted as ioredis accepts it, the chunks still go raw', async ({ namespace }) => {
    const url = server.url.replace('redis://', 'redis://:not-needed@');
    const store = new Store(`raw-pass-${namespace}`, new RedisConnector({ url, namespace }), { chunkSize: CHUNK, cacheSize: 0 });
    try {
      const value = randomBytes(6 * CHUNK);
      const key = await store.put(value);
      expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
      expect(store.connector.raw.stats.raw).toBeGreaterThanOrEqual(2 * 7);
      expect(store.connector.raw.stats.fallbacks).toBe(0);
      await store.evict(key);
    } finally {
      await store.close();
    }
  });

  test('a server that stops answering (SIGSTOP) mid-get: the raw read fails after the command timeout, typed as ioredis\'s own timeout, and is not sent again through ioredis (which would wait as long again)', async ({ namespace }) => {
    const frozen = await startRedisServer();
    const store = new Store(`raw-frozen-${namespace}`, new RedisConnector({ url: frozen.url, namespace, commandTimeoutMs: 1000 }), { chunkSize: CHUNK, cacheSize: 0 });
    let stopped = false;
    try {
      const value = randomBytes(40 * CHUNK + 3);
      const key = await store.put(value);
      const raw = store.connector.raw as unknown as Record<'readInto', (...args: unknown[]) => Promise<boolean>>;
      const original = raw.readInto;
      let calls = 0;
      raw.readInto = function (this: unknown, ...args: unknown[]) {
        if (++calls === 3) {
          process.kill(frozen.pid, 'SIGSTOP');
          stopped = true;
        }
        return original.apply(this, args);
      };
      const err = await store.get(key).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RedisOperationError);
      expect((err as Error).message).toMatch(/^Redis HGET \(chunk\) failed .*no reply within the command timeout \(1000 ms\).*may or may not have run/);
      // Before: each timed-out chunk was sent again through ioredis, waiting a second command timeout.
      expect(store.connector.raw.stats.fallbacks).toBe(0);
    } finally {
      if (stopped) process.kill(frozen.pid, 'SIGCONT');
      await store.close();
      await frozen.stop();
    }
  });
});
