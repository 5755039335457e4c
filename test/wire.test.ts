/**
 * Watches the wire with MONITOR: each public operation is one command from
 * the store's connection (one round trip), scripts go as EVALSHA after
 * their first use, and SCRIPT FLUSH in the middle of a run breaks nothing.
 */
import type { Redis } from 'ioredis';
import { fromRef, getKey, resolve, toRef } from '../src/index.js';
import { watch } from './harness/monitor.js';
import { describe, expect, test } from './harness/store-fixture.js';

describe('round trips on the wire', () => {
  test('put, get, resolve and an ephemeral consume are one command each; scripts go as EVALSHA', async ({
    store,
    redis,
  }) => {
    const client = store.connector.client as Redis;
    const wire = await watch(redis, client);

    let key = '';
    const put = await wire.during(async () => {
      key = await store.put({ a: 1 });
    });
    expect(put.map((s) => s.command)).toEqual(['set']);

    const get = await wire.during(() => store.get(key));
    expect(get.map((s) => s.command)).toEqual(['get']);

    const p = fromRef(toRef(await store.proxyFromKey(key)));
    const resolved = await wire.during(() => resolve(p));
    expect(resolved.map((s) => s.command)).toEqual(['get']);

    const e1 = await store.proxy([1], { evict: true });
    const e2 = await store.proxy([2], { evict: true });
    const e3 = await store.proxy([3], { evict: true });
    const first = await wire.during(() => resolve(fromRef(toRef(e1))));
    expect(first).toHaveLength(1);
    expect(['eval', 'evalsha']).toContain(first[0]!.command);
    const second = await wire.during(() => resolve(fromRef(toRef(e2))));
    expect(second.map((s) => s.command)).toEqual(['evalsha']);

    // SCRIPT FLUSH in the middle of a run: the next call reloads the script and succeeds.
    await redis.script('FLUSH');
    let value: unknown;
    const afterFlush = await wire.during(async () => {
      value = await resolve(fromRef(toRef(e3)));
    });
    expect(value).toEqual([3]);
    expect(afterFlush.map((s) => s.command)).toEqual(['evalsha', 'eval']);
    const e4 = await store.proxy([4], { evict: true });
    const later = await wire.during(() => resolve(fromRef(toRef(e4))));
    expect(later.map((s) => s.command)).toEqual(['evalsha']);

    await wire.stop();
    await store.evict(key);
    for (const e of [e1, e2, e3, e4]) expect(await store.exists(getKey(e))).toBe(false);
  });

  test('putBatch sends one SET per value and nothing else', async ({ store, redis }) => {
    const client = store.connector.client as Redis;
    const wire = await watch(redis, client);
    let keys: string[] = [];
    const seen = await wire.during(async () => {
      keys = await store.putBatch(Array.from({ length: 50 }, (_, i) => ({ i })));
    });
    expect(seen.every((s) => s.command === 'set')).toBe(true);
    expect(seen).toHaveLength(50);
    await wire.stop();
    for (const k of keys) await store.evict(k);
  });
});
