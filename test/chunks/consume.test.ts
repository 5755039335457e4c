/**
 * Consuming reads of chunked objects (lua/consume.lua): evict (one read)
 * and reads: n, through refs resolved by other stores; no key is left
 * behind once the object is consumed and the grace copies released.
 */
import { randomBytes } from 'node:crypto';
import { ProxyResolveMissingKeyError, fromRef, resolve, toRef } from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { CHUNK, chunkedStore, keysOf } from './util.js';


describe('consume a chunked object', () => {
  test('evict: the first resolve of the ref gets it, the second is told who took it; nothing but the tombstone is left', async ({ target, namespace }) => {
    const name = `consume-${namespace}`;
    const store = chunkedStore(target, namespace, name);
    try {
      const value = randomBytes(9 * CHUNK + 17);
      const p = await store.proxy(value, { evict: true, populateTarget: false });
      const ref = JSON.stringify(toRef(p));
      const got = await resolve(fromRef<Buffer>(JSON.parse(ref)));
      expect(Buffer.compare(got, value)).toBe(0);
      await expect(resolve(fromRef<Buffer>(JSON.parse(ref)))).rejects.toThrow(ProxyResolveMissingKeyError);
      await store.connector.graceReleased();
      const left = await keysOf(store);
      expect(left.every((k) => k.includes(':tomb:')), left.join(' ')).toBe(true);
    } finally {
      await store.close();
    }
  });

  test('reads: 3: three consumers get it, the fourth does not; earlier reads leave no copy behind', async ({ target, namespace }) => {
    const name = `reads-${namespace}`;
    const store = chunkedStore(target, namespace, name);
    try {
      const value = randomBytes(6 * CHUNK);
      const p = await store.proxy(value, { reads: 3, populateTarget: false });
      const ref = JSON.stringify(toRef(p));
      const got = await Promise.all([0, 1, 2].map(() => resolve(fromRef<Buffer>(JSON.parse(ref)))));
      for (const g of got) expect(Buffer.compare(g, value)).toBe(0);
      await expect(resolve(fromRef<Buffer>(JSON.parse(ref)))).rejects.toThrow(/3 of 3|budget/);
      await store.connector.graceReleased();
      const left = await keysOf(store);
      expect(left.every((k) => k.includes(':tomb:')), left.join(' ')).toBe(true);
    } finally {
      await store.close();
    }
  });

  test('a consume resent with the same token (its reply lost) gets the same bytes from the grace copy', async ({ target, namespace }) => {
    const store = chunkedStore(target, namespace, `resent-${namespace}`);
    try {
      const value = randomBytes(4 * CHUNK + 1);
      const key = await store.put(value);
      const token = 'tokenAAAAAAAAAAAAAAAAA';
      // The first run takes the object: read its chunks, but keep the grace copy (as a lost reply would).
      const keys = store.connector.consumeKeys(key, token);
      const first = await store.connector.scripts.run('consume', keys, { token, consumer: '{}', ttlMs: 60_000, graceMs: 30_000 }, { key });
      expect(first.consumed && first.chunked?.total).toBe(value.length + 3);
      const again = await store.connector.consume(key, '{}', 60_000, token);
      expect(again.consumed).toBe(true);
      if (again.consumed) expect(Buffer.compare(again.value.subarray(3), value)).toBe(0);
      await store.connector.graceReleased();
      expect((await keysOf(store)).every((k) => k.includes(':tomb:'))).toBe(true);
    } finally {
      await store.close();
    }
  });
});
