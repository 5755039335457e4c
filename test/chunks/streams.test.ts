/**
 * putStream and getStream (src/chunks/): bytes in and out with bounded
 * memory, errors typed, nothing left behind by a failed stream.
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ContextLifetime,
  InvalidOptionsError,
  LeaseLifetime,
  ProxyResolveMissingKeyError,
  fromRef,
  getKey,
  resolve,
  toRef,
} from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { CHUNK, chunkedStore, keysOf, watchChunkReads } from './util.js';


async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

describe('putStream', () => {
  test('a generator of odd-sized parts is stored as a Buffer; small streams too; rules apply', async ({ target, namespace, redis }) => {
    const store = chunkedStore(target, namespace, `put-${namespace}`);
    try {
      const parts = [7, 1000, 3000, 1, 0, 2500].map((n) => randomBytes(n));
      const whole = Buffer.concat(parts);
      const key = await store.putStream(
        (async function* () {
          for (const p of parts) yield p;
        })(),
      );
      expect(await redis.type(store.connector.dataKey(key))).toBe('hash');
      expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, whole)).toBe(0);
      // A Readable, below chunkSize: one value, a string key.
      const small = await store.putStream(Readable.from([Buffer.from('abc'), Buffer.from('def')]));
      expect(await redis.type(store.connector.dataKey(small))).toBe('string');
      expect(((await store.get<Buffer>(small)) as Buffer).toString()).toBe('abcdef');
      const empty = await store.putStream(Readable.from([]));
      expect(((await store.get<Buffer>(empty)) as Buffer).length).toBe(0);
      // ttl and reads: 2 (two consuming resolves, then gone).
      const timed = await store.putStream(Readable.from([randomBytes(3 * CHUNK)]), { ttl: 30 });
      expect(await redis.pttl(store.connector.dataKey(timed))).toBeGreaterThan(20_000);
      const twice = await store.putStream(Readable.from([whole]), { reads: 2 });
      const p = await store.proxyFromKey<Buffer>(twice, { evict: true });
      expect(Buffer.compare(await resolve(p), whole)).toBe(0);
      const q = await store.proxyFromKey<Buffer>(twice, { evict: true });
      expect(Buffer.compare(await resolve(q), whole)).toBe(0);
      expect(await store.exists(twice)).toBe(false);
      for (const k of [key, small, empty, timed]) await store.evict(k);
      await store.connector.graceReleased();
      expect((await keysOf(store)).filter((k) => !k.includes(':tomb:'))).toEqual([]);
      await expect(store.putStream('not a stream' as never)).rejects.toThrow(InvalidOptionsError);
      await expect(store.putStream(Readable.from([]), { dedupe: true } as never)).rejects.toThrow(InvalidOptionsError);
    } finally {
      await store.close();
    }
  });

  test('with a lifetime: the stream is a member (committed with the membership), evicted by the close', async ({ target, namespace, redis }) => {
    const store = chunkedStore(target, namespace, `lt-${namespace}`);
    try {
      const lifetime = new ContextLifetime(store);
      const whole = randomBytes(7 * CHUNK + 9);
      const key = await store.putStream(Readable.from([whole.subarray(0, 100), whole.subarray(100)]), { lifetime, reads: 2 });
      expect(key.startsWith(`${lifetime.id}~`)).toBe(true);
      expect(await redis.type(store.connector.dataKey(key))).toBe('hash');
      expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, whole)).toBe(0);
      const small = await store.putStream(Readable.from([Buffer.from('tiny')]), { lifetime });
      await lifetime.close();
      expect(await store.exists(key)).toBe(false);
      expect(await store.exists(small)).toBe(false);
      // A failing stream under a lifetime leaves nothing either.
      const lease = new LeaseLifetime(store, { expiry: 30 });
      const boom = new Error('half-way');
      const failing = (async function* () {
        yield randomBytes(3 * CHUNK);
        throw boom;
      })();
      await expect(store.putStream(failing, { lifetime: lease })).rejects.toBe(boom);
      await lease.close();
      await new Promise((r) => setTimeout(r, 50));
      expect((await keysOf(store)).filter((k) => !k.endsWith(':lt'))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  test('a stream that fails half-way rejects with its own error and leaves no key behind', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace, `fail-${namespace}`);
    try {
      const boom = new Error('producer died');
      let sent = 0;
      const failing = new Readable({
        read() {
          if (sent >= 6) {
            this.destroy(boom);
            return;
          }
          sent++;
          this.push(randomBytes(CHUNK));
        },
      });
      await expect(store.putStream(failing)).rejects.toBe(boom);
      expect(sent).toBe(6);
      // The staging hash is unlinked (it would expire anyway).
      await new Promise((r) => setTimeout(r, 50));
      expect(await keysOf(store)).toEqual([]);
      // A string stream (object mode) is refused clearly, nothing left.
      await expect(store.putStream(Readable.from(['text', 'parts']))).rejects.toThrow(/Buffers or Uint8Arrays/);
      await new Promise((r) => setTimeout(r, 50));
      expect(await keysOf(store)).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe('getStream', () => {
  test('streams chunked and small Buffers; pipeline() works; errors are typed', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace, `get-${namespace}`);
    try {
      const large = randomBytes(10 * CHUNK + 5);
      const small = randomBytes(50);
      const typed = new Uint16Array(3 * CHUNK).map((_, i) => i);
      const [lk, sk, tk, ok] = await store.putBatch([large, small, typed, { not: 'binary' }]);
      expect(Buffer.compare(await collect(store.getStream(lk as string)), large)).toBe(0);
      expect(Buffer.compare(await collect(store.getStream(sk as string)), small)).toBe(0);
      expect(Buffer.compare(await collect(store.getStream(tk as string)), Buffer.from(typed.buffer))).toBe(0);
      const sink: Buffer[] = [];
      await pipeline(
        store.getStream(lk as string),
        new Writable({
          write(chunk: Buffer, _enc, done) {
            sink.push(chunk);
            done();
          },
        }),
      );
      expect(Buffer.compare(Buffer.concat(sink), large)).toBe(0);
      await expect(collect(store.getStream(ok as string))).rejects.toThrow(InvalidOptionsError);
      await expect(collect(store.getStream('no-such-key'))).rejects.toThrow(ProxyResolveMissingKeyError);
      // A consumed key says so.
      const gone = await store.proxy(randomBytes(2 * CHUNK), { evict: true, populateTarget: false });
      await resolve(fromRef(JSON.parse(JSON.stringify(toRef(gone)))));
      await expect(collect(store.getStream(getKey(gone)))).rejects.toThrow(/consumed/);
      for (const k of [lk, sk, tk, ok]) await store.evict(k as string);
    } finally {
      await store.close();
    }
  });

  test('a slow consumer: chunks are asked for as it pulls, never more than a few ahead', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace, `slow-${namespace}`);
    try {
      const chunks = 40;
      const value = randomBytes(chunks * CHUNK);
      const key = await store.put(value);
      // Count the chunk reads (HGET of a chunk field, raw or through ioredis) as they are sent.
      const reads = watchChunkReads(store);
      let received = 0;
      const stream = store.getStream(key);
      const ahead: number[] = [];
      const parts: Buffer[] = [];
      for await (const part of stream) {
        parts.push(part as Buffer);
        received += (part as Buffer).length;
        // Chunks requested beyond what the consumer has taken.
        ahead.push(reads.fields.length - Math.ceil(received / CHUNK));
        await new Promise((r) => setTimeout(r, 5));
      }
      reads.restore();
      expect(Buffer.compare(Buffer.concat(parts), value)).toBe(0);
      expect(reads.fields.length).toBe(chunks + 1);
      expect(Math.max(...ahead)).toBeLessThanOrEqual(3);
      await store.evict(key);
    } finally {
      await store.close();
    }
  });
});
