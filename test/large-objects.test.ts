/**
 * Chunked values (issue 16, DESIGN §7.4), in one process: sizes around every
 * boundary of `chunkSize` round-trip through put/get, proxy/resolve and
 * putStream/getStream (and getRange), and a producer stream that fails
 * half-way leaves nothing behind. Runs on a single Redis and on a Cluster.
 *
 * The stores here use a small `chunkSize` so that "many chunks" stays small.
 * A value is chunked when its stored bytes (for a Buffer: a 3-byte header,
 * src/serialize.ts, then its bytes) exceed `chunkSize`; its data key is then
 * a hash (manifest + chunks) instead of a string.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RedisConnector, Store, fromRef, resolve, toRef } from '../src/index.js';
import { connectionOptions, describe, expect, namespaceKeys, test as base } from './harness/store-fixture.js';

const CHUNK = 64 * 1024;
/** Bytes a Buffer's stored form adds (src/serialize.ts: magic, codec, shape). */
const HEADER = 3;

const test = base.extend('chunked', async ({ target, namespace }, { onCleanup }) => {
  const store = new Store(`chunks-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), {
    register: true,
    chunkSize: CHUNK,
  });
  onCleanup(() => store.close());
  return store;
});

/** Deterministic bytes, different at every offset mod 251 and per seed: a chunk out of place changes them. */
function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) % 251;
  return b;
}

/** `buf` as a stream of pieces of `piece` bytes (a last shorter one). */
function streamOf(buf: Buffer, piece: number): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at >= buf.length) return void this.push(null);
      this.push(buf.subarray(at, Math.min(at + piece, buf.length)));
      at += piece;
    },
  });
}

async function collect(readable: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    readable,
    new Writable({
      write(chunk: Buffer, _enc, done) {
        parts.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(parts);
}

/** Buffer lengths whose stored size is around each boundary, and a value of many chunks. */
const STORED: [string, number][] = [
  ['chunkSize - 1 stored bytes', CHUNK - 1 - HEADER],
  ['chunkSize stored bytes', CHUNK - HEADER],
  ['chunkSize + 1 stored bytes', CHUNK + 1 - HEADER],
  ['a payload of chunkSize - 1 bytes', CHUNK - 1],
  ['a payload of chunkSize bytes', CHUNK],
  ['a payload of chunkSize + 1 bytes', CHUNK + 1],
  ['2 x chunkSize stored bytes', 2 * CHUNK - HEADER],
  ['2 x chunkSize + 1 stored bytes', 2 * CHUNK + 1 - HEADER],
  ['many chunks (37 and a bit)', 37 * CHUNK + 12_345],
];

describe('put and get', () => {
  test.for(STORED)('a Buffer of %s round-trips', async ([, n], { chunked, redis }) => {
    const value = bytes(n);
    const key = await chunked.put(value);
    const type = await redis.type(chunked.connector.dataKey(key));
    expect(type).toBe(n + HEADER > CHUNK ? 'hash' : 'string');
    const back = await chunked.get<Buffer>(key);
    expect(Buffer.isBuffer(back)).toBe(true);
    expect(back?.equals(value)).toBe(true);
    expect(await chunked.exists(key)).toBe(true);
    await chunked.evict(key);
    expect(await chunked.exists(key)).toBe(false);
    expect(await namespaceKeys(redis, chunked.connector.namespace)).toEqual([]);
  });

  test('an object and a typed array larger than chunkSize keep their type', async ({ chunked, redis }) => {
    const rows = Array.from({ length: 20_000 }, (_, i) => ({ id: i, name: `row ${i}`, when: new Date(i * 1000) }));
    const floats = new Float64Array(3 * (CHUNK / 8) + 5).map((_, i) => i / 3);
    const [k1, k2] = [await chunked.put(rows), await chunked.put(floats)];
    for (const k of [k1, k2]) expect(await redis.type(chunked.connector.dataKey(k))).toBe('hash');
    expect(await chunked.get(k1)).toEqual(rows);
    const back = await chunked.get<Float64Array>(k2);
    expect(back).toBeInstanceOf(Float64Array);
    expect(back).toEqual(floats);
    await chunked.evict(k1);
    await chunked.evict(k2);
  });

  test('with the default chunkSize: chunkSize stored bytes are one string, one more are chunks', async ({ store, redis }) => {
    expect(store.chunkSize).toBe(4 * 1024 * 1024);
    for (const n of [store.chunkSize - HEADER, store.chunkSize + 1 - HEADER]) {
      const value = bytes(n, 7);
      const key = await store.put(value);
      expect(await redis.type(store.connector.dataKey(key))).toBe(n + HEADER > store.chunkSize ? 'hash' : 'string');
      expect((await store.get<Buffer>(key))?.equals(value)).toBe(true);
      await store.evict(key);
    }
  });

  test('the default store reads what a small-chunk store wrote (the manifest says the chunk size)', async ({ chunked, store }) => {
    const value = bytes(5 * CHUNK + 3, 9);
    const key = await chunked.put(value);
    expect((await store.get<Buffer>(key))?.equals(value)).toBe(true);
    await chunked.evict(key);
  });
});

describe('proxy and resolve', () => {
  test.for(STORED)('a proxy of %s resolves from its ref', async ([, n], { chunked }) => {
    const value = bytes(n, 3);
    const p = await chunked.proxy(value);
    const back = await resolve(fromRef<Buffer>(toRef(p)));
    expect(Buffer.from(back).equals(value)).toBe(true);
    await chunked.evict(toRef(p).key);
  });

  test('an ephemeral chunked proxy is consumed by its one resolve, and takes its chunks along', async ({ chunked, redis }) => {
    const value = bytes(9 * CHUNK + 1, 5);
    const ref = toRef(await chunked.proxy(value, { evict: true }));
    expect(Buffer.from(await resolve(fromRef<Buffer>(ref))).equals(value)).toBe(true);
    await expect(resolve(fromRef(ref))).rejects.toMatchObject({ name: 'ProxyResolveMissingKeyError' });
    expect(await redis.exists(chunked.connector.dataKey(ref.key))).toBe(0);
  });
});

describe('putStream and getStream', () => {
  const SIZES: [string, number][] = [
    ['empty', 0],
    ['chunkSize - 1 stored bytes', CHUNK - 1 - HEADER],
    ['chunkSize stored bytes', CHUNK - HEADER],
    ['chunkSize + 1 stored bytes', CHUNK + 1 - HEADER],
    ['chunkSize - 1 bytes', CHUNK - 1],
    ['chunkSize bytes', CHUNK],
    ['chunkSize + 1 bytes', CHUNK + 1],
    ['many chunks (23 and a bit)', 23 * CHUNK + 777],
  ];
  // Pieces smaller than a chunk, not dividing it, and one piece of everything.
  const PIECES = [1000, CHUNK + 17, Number.MAX_SAFE_INTEGER];

  test.for(SIZES)('%s, written in pieces of several sizes, come back byte for byte', async ([, n], { chunked, store, redis }) => {
    const value = bytes(n, 11);
    for (const piece of PIECES) {
      const key = await chunked.putStream(streamOf(value, piece));
      // Stored as a Buffer value: a 3-byte header, then the stream's bytes.
      expect(await redis.type(chunked.connector.dataKey(key))).toBe(n + HEADER > CHUNK ? 'hash' : 'string');
      expect((await collect(chunked.getStream(key))).equals(value)).toBe(true);
      // Any store of the namespace reads it, and get gives the same bytes.
      expect((await collect(store.getStream(key))).equals(value)).toBe(true);
      expect(Buffer.from((await chunked.get<Uint8Array>(key)) ?? []).equals(value)).toBe(true);
      await chunked.evict(key);
    }
  });

  test('getStream of a value put with put (chunked or not) gives its bytes', async ({ chunked }) => {
    for (const n of [10, CHUNK - HEADER, 4 * CHUNK + 9]) {
      const value = bytes(n, 13);
      const key = await chunked.put(value);
      expect((await collect(chunked.getStream(key))).equals(value)).toBe(true);
      await chunked.evict(key);
    }
  });

  test('getRange gives any slice, across chunk boundaries (end exclusive)', async ({ chunked }) => {
    const value = bytes(6 * CHUNK + 100, 17);
    const key = await chunked.putStream(streamOf(value, 4096));
    const ranges: [number, number][] = [
      [0, 1],
      [0, CHUNK],
      [CHUNK - 1, CHUNK + 1],
      [CHUNK, 2 * CHUNK],
      [3 * CHUNK - 5, 5 * CHUNK + 5],
      [6 * CHUNK, 6 * CHUNK + 100],
      [0, value.length],
      [17, 17],
    ];
    for (const [start, end] of ranges) {
      expect((await chunked.getRange(key, start, end)).equals(value.subarray(start, end)), `range ${start}-${end}`).toBe(true);
    }
    await chunked.evict(key);
  });

  test('putStream options: ttl gives every key of the object an expiry; evict makes it consumed once', async ({ chunked, redis }) => {
    const value = bytes(3 * CHUNK + 1, 19);
    const key = await chunked.putStream(streamOf(value, 5000), { ttl: 120 });
    const ttl = await redis.pttl(chunked.connector.dataKey(key));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(120_000);
    const once = await chunked.putStream(streamOf(value, 5000), { evict: true });
    const p = await chunked.proxyFromKey<Buffer>(once, { evict: true });
    expect(Buffer.from(await resolve(p)).equals(value)).toBe(true);
    expect(await chunked.exists(once)).toBe(false);
    await chunked.evict(key);
  });
});

describe('a producer stream that fails', () => {
  /** A stream of `good` whole chunks' worth of bytes, then `fail()`. */
  function failing(good: number, fail: (s: Readable) => void): Readable {
    let sent = 0;
    return new Readable({
      read() {
        if (sent < good) {
          this.push(bytes(CHUNK / 2, sent));
          sent += 0.5;
        } else fail(this);
      },
    });
  }

  test('half-way: putStream rejects with its error and leaves no key at all (no data, no staging key)', async ({ chunked, redis }) => {
    const before = await namespaceKeys(redis, chunked.connector.namespace);
    const boom = new Error('the disk caught fire half-way');
    await expect(chunked.putStream(failing(5, (s) => s.destroy(boom)))).rejects.toBe(boom);
    expect(await namespaceKeys(redis, chunked.connector.namespace)).toEqual(before);
  });

  test('before its first chunk and with options (ttl, evict): the same', async ({ chunked, redis }) => {
    const before = await namespaceKeys(redis, chunked.connector.namespace);
    const boom = new Error('no bytes at all');
    await expect(chunked.putStream(failing(0, (s) => s.destroy(boom)), { ttl: 60 })).rejects.toBe(boom);
    await expect(chunked.putStream(failing(3, (s) => s.destroy(boom)), { evict: true })).rejects.toBe(boom);
    expect(await namespaceKeys(redis, chunked.connector.namespace)).toEqual(before);
  });

  test('aborted (destroyed without an error): putStream rejects and leaves nothing', async ({ chunked, redis }) => {
    const before = await namespaceKeys(redis, chunked.connector.namespace);
    await expect(chunked.putStream(failing(4, (s) => s.destroy()))).rejects.toThrow();
    expect(await namespaceKeys(redis, chunked.connector.namespace)).toEqual(before);
  });
});
