import { borrow, drop, fromRef, release, resolve, toRef } from '../src/index.js';
import { Store } from '../src/index.js';
import { describe, expect, test } from './harness/store-fixture.js';

describe('store metrics', () => {
  test('are off by default', async ({ store }) => {
    await store.evict(await store.put(1));
    expect(store.metrics()).toBeUndefined();
    store.resetMetrics(); // a no-op
    await store.evict((await store.putBatch([1]))[0]!);
  });

  test('count calls, failures, time and bytes per operation', async ({ connect }) => {
    const store = new Store('metered', connect(), { metrics: true, register: true });
    try {
      const key = await store.put({ a: 'x'.repeat(100) });
      const keys = await store.putBatch([1, 2, 3]);
      await store.get(key);
      await store.get('missing-key');
      await store.exists(key);
      const ephemeral = await store.proxy([1, 2], { evict: true });
      await resolve(fromRef(toRef(ephemeral)));
      await resolve(fromRef(toRef(ephemeral))).catch(() => undefined);
      const p = await store.proxy({ b: 1 });
      await resolve(fromRef(toRef(p)));
      const owned = await store.ownedProxy([1]);
      await release(await borrow(owned));
      await drop(owned);
      for (const k of [key, ...keys]) await store.evict(k);
      await store.evict(toRef(p).key);

      const m = store.metrics()!;
      // put: the explicit put plus the two proxies' puts.
      expect(m.put!.count).toBe(3);
      expect(m.put!.bytes).toBeGreaterThan(100);
      expect(m.putBatch).toMatchObject({ count: 1, errors: 0 });
      expect(m.get).toMatchObject({ count: 2, errors: 0 });
      expect(m.get!.bytes).toBeGreaterThan(100);
      expect(m.exists!.count).toBe(1);
      expect(m.consume).toMatchObject({ count: 2, errors: 1 });
      expect(m.resolve).toMatchObject({ count: 1, errors: 0 });
      expect(m.evict!.count).toBe(5);
      for (const op of ['ownedProxy', 'borrow', 'release', 'drop']) expect(m[op]?.count, op).toBe(1);
      for (const op of Object.values(m)) {
        expect(op.minMs).toBeGreaterThanOrEqual(0);
        expect(op.maxMs).toBeGreaterThanOrEqual(op.minMs);
        expect(op.avgMs).toBeCloseTo(op.totalMs / op.count);
      }
      store.resetMetrics();
      expect(store.metrics()).toEqual({});
      expect(store.config().metrics).toBe(true);
    } finally {
      await store.close();
    }
  });
});
