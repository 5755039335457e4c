/**
 * A lifetime of 1,000,000 members closes completely, through the public API,
 * in bounded chunks. How long it takes, and how long each script call holds
 * Redis, is the benchmark's business (bench/lifetimes.ts): nothing here
 * asserts a duration.
 */
import { ContextLifetime } from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { lifetimeKeys, namespaceKeys } from './util.js';

const MEMBERS = 1_000_000;
const BATCH = 50_000;

describe('scale', () => {
  test('a 1,000,000-member lifetime closes completely', { timeout: 600_000 }, async ({ store, redis, namespace }) => {
    const lifetime = await new ContextLifetime(store, { name: 'a million' }).waitUntilReady();
    for (let done = 0; done < MEMBERS; done += BATCH) {
      await store.putBatch(Array.from({ length: BATCH }, (_, i) => done + i), { lifetime });
    }
    const k = lifetimeKeys(store, lifetime.id);
    expect(await redis.scard(k.members)).toBe(MEMBERS);

    await lifetime.close();

    expect(await redis.exists(k.members, k.foreign)).toBe(0);
    expect(await namespaceKeys(redis, namespace)).toEqual([k.meta]);
    expect(await redis.hget(k.meta, 'state')).toBe('ended');
    expect(await lifetime.done()).toBe(true);
  });
});
