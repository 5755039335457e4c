/**
 * The raw chunk connection (src/redis/raw.ts, docs/large-objects.md): chunks
 * are written and read over it, byte for byte around every chunk boundary,
 * on a single Redis and on a Cluster (a link per master), and closing the
 * store closes its links (none left in CLIENT LIST). Its fallback to ioredis
 * is in raw-fallback.test.ts (single) and test/cluster/raw-ask.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import type { Store } from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { CHUNK, chunkedStore } from './util.js';

/** The store's raw transfers (internal). */
function rawOf(store: Store) {
  return store.connector.raw;
}

/** The client addresses (ip:port) every master lists (CLIENT LIST). */
async function clientAddresses(redis: Redis | { nodes(role: string): Redis[] }): Promise<string[]> {
  const nodes = 'nodes' in redis && typeof redis.nodes === 'function' ? redis.nodes('master') : [redis as Redis];
  const out: string[] = [];
  for (const node of nodes) {
    const list = String(await node.call('CLIENT', 'LIST'));
    for (const m of list.matchAll(/ addr=(\S+) /g)) out.push(m[1] as string);
  }
  return out;
}

async function drain(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

describe('the raw chunk connection', () => {
  test('carries every chunk, byte for byte, around each chunk boundary (get, getRange, getStream, putStream)', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace);
    try {
      // Stored bytes are the 3-byte header plus the payload: CHUNK - 3 is one chunk exactly (not chunked).
      const sizes = [CHUNK - 4, CHUNK - 3, CHUNK - 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 3, 2 * CHUNK - 2, 7 * CHUNK + 5, 64 * CHUNK + 1];
      for (const size of sizes) {
        const value = randomBytes(size);
        const key = await store.put(value);
        expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value), `get of ${size}`).toBe(0);
        expect(Buffer.compare(await drain(store.getStream(key)), value), `getStream of ${size}`).toBe(0);
        // Ranges that start and end on each side of every chunk boundary of the stored bytes.
        for (let b = CHUNK - 3; b < size; b += CHUNK) {
          for (const [s, e] of [[b - 1, b], [b, b + 1], [b - 1, Math.min(size, b + 2)], [Math.max(0, b - CHUNK - 1), Math.min(size, b + CHUNK + 1)]] as [number, number][]) {
            expect(Buffer.compare(await store.getRange(key, s, e), value.subarray(s, e)), `getRange(${s}, ${e}) of ${size}`).toBe(0);
          }
        }
        // A stream in parts that do not line up with the chunks.
        const parts = [];
        for (let at = 0; at < size; at += 777) parts.push(value.subarray(at, at + 777));
        const streamed = await store.putStream(Readable.from(parts));
        expect(Buffer.compare((await store.get<Buffer>(streamed)) as Buffer, value), `putStream of ${size}`).toBe(0);
        await store.evict(key);
        await store.evict(streamed);
      }
      const stats = rawOf(store).stats;
      // Every chunk of every object went over a raw link (none had to be sent again through ioredis).
      expect(stats.raw).toBeGreaterThan(4 * 64);
      expect(stats.fallbacks).toBe(0);
      expect(stats.opened).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  test('the bytes read raw are the bytes Redis holds (HGET through ioredis), chunk by chunk', async ({ target, namespace, redis }) => {
    const store = chunkedStore(target, namespace);
    try {
      const value = randomBytes(5 * CHUNK + 100);
      const key = await store.put(value);
      const data = store.connector.dataKey(key);
      const manifest = String(await redis.hget(data, 'm')).split(':');
      const [count, w] = [Number(manifest[2]), manifest[4] as string];
      const held = Buffer.concat(await Promise.all(Array.from({ length: count }, async (_, i) => (await redis.hgetBuffer(data, `${w}:${i}`)) as Buffer)));
      const before = rawOf(store).stats.raw;
      const read = (await store.connector.get(key)) as Buffer;
      expect(rawOf(store).stats.raw - before).toBe(count);
      expect(Buffer.compare(read, held)).toBe(0);
      expect(Buffer.compare(read.subarray(3), value)).toBe(0);
      await store.evict(key);
    } finally {
      await store.close();
    }
  });

  test('closing the store closes its raw connections: none is left on the server', async ({ target, namespace, redis }) => {
    const store = chunkedStore(target, namespace);
    // Objects in many slots: on a Cluster, links to several masters.
    const keys = [];
    for (let i = 0; i < 6; i++) keys.push(await store.put(randomBytes(3 * CHUNK)));
    for (const key of keys) await store.get(key);
    const ports = rawOf(store).localPorts();
    expect(ports.length).toBeGreaterThan(0);
    const ours = (addresses: string[]) => addresses.filter((a) => ports.includes(Number(a.split(':').pop())));
    expect(ours(await clientAddresses(redis)).length).toBe(ports.length);
    for (const key of keys) await store.evict(key);
    await store.close();
    expect(rawOf(store).open).toBe(0);
    expect(rawOf(store).localPorts()).toEqual([]);
    // The server sees the sockets close (asynchronously): wait for it, at most a few seconds.
    let left = ours(await clientAddresses(redis));
    for (let i = 0; i < 100 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      left = ours(await clientAddresses(redis));
    }
    expect(left).toEqual([]);
  });
});
