/**
 * Store keys with odd characters and any Unicode work for get, exists,
 * evict, proxyFromKey and ephemeral consume, and always map to Redis keys
 * inside the namespace with one intact hash tag (a key can never break the
 * tag and scatter an object's records, or reach outside the namespace).
 */
import fc from 'fast-check';
import { serialize } from '../../src/serialize.js';
import { InvalidOptionsError, ProxyResolveMissingKeyError, fromRef, resolve, toRef, type Store } from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';

const ODD = ['{', '}', '{}', '}{', ':', '~', '%', '%7B', '%7D', '*', '?', '[', ']', '\\', ' ', '\n', '\r\n', '\0', '/', '..', 'é', '😀', '\u202e', '\ufeff'];
const oddKey = fc
  .array(fc.oneof(fc.constantFrom(...ODD), fc.string({ unit: 'binary', minLength: 1, maxLength: 4 })), { minLength: 1, maxLength: 8 })
  .map((parts) => parts.join(''));

/** The hash tag Redis Cluster hashes: what lies between the first `{` and the next `}`. */
function hashTag(redisKey: string): string | undefined {
  const open = redisKey.indexOf('{');
  const close = redisKey.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? redisKey.slice(open + 1, close) : undefined;
}

function redisKeysOf(store: Store, key: string) {
  return { data: store.connector.dataKey(key), tomb: store.connector.keys.object('tomb', key), own: store.connector.keys.object('own', key) };
}

describe('keys with odd characters and Unicode', () => {
  test('every Redis key of an object is in the namespace and shares one intact hash tag', ({ store }) => {
    fc.assert(
      fc.property(oddKey, (key) => {
        const keys = redisKeysOf(store, key);
        const tags = Object.values(keys).map(hashTag);
        for (const redisKey of Object.values(keys)) expect(redisKey.startsWith(`${store.namespace}:{`)).toBe(true);
        expect(tags[0]).toBeDefined();
        expect(new Set(tags).size).toBe(1);
        // Nothing after the tag can open another one.
        for (const redisKey of Object.values(keys)) expect(redisKey.slice(redisKey.indexOf('}') + 1)).not.toMatch(/[{}]/);
      }),
      { numRuns: 2000 },
    );
  });

  test('two different keys never share a Redis key', ({ store }) => {
    fc.assert(
      fc.property(oddKey, oddKey, (a, b) => {
        fc.pre(a !== b);
        expect(store.connector.dataKey(a)).not.toBe(store.connector.dataKey(b));
      }),
      { numRuns: 2000 },
    );
  });

  test('get, exists, proxyFromKey and evict work on any key, touching only its Redis key', async ({ store, redis, namespace }) => {
    await fc.assert(
      // Values are not the point here (round-trip.test.ts is): plain ones that come back equal.
      fc.asyncProperty(oddKey, fc.record({ s: fc.string({ unit: 'binary' }), n: fc.integer(), list: fc.array(fc.integer()) }), async (key, value) => {
        await store.connector.set(key, serialize(value));
        try {
          expect(await redis.keys(`${namespace}:{*`)).toEqual([store.connector.dataKey(key)]);
          expect(await store.exists(key)).toBe(true);
          expect(await store.get(key)).toEqual(value);
          const p = await store.proxyFromKey(key);
          expect(await resolve(p)).toEqual(value);
          await store.evict(key);
          expect(await store.exists(key)).toBe(false);
          expect(await redis.keys(`${namespace}:{*`)).toEqual([]);
        } finally {
          await store.evict(key);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('an ephemeral proxy of any key is consumed once, its tombstone in the same hash tag', async ({ store, redis }) => {
    await fc.assert(
      fc.asyncProperty(oddKey, async (key) => {
        await store.connector.set(key, serialize('once'));
        const ref = toRef(await store.proxyFromKey(key, { evict: true }));
        expect(await resolve(fromRef(ref))).toBe('once');
        await expect(resolve(fromRef(ref))).rejects.toThrow(ProxyResolveMissingKeyError);
        const { data, tomb } = redisKeysOf(store, key);
        expect(await redis.exists(data)).toBe(0);
        expect(await redis.pttl(tomb)).toBeGreaterThan(0);
        expect(hashTag(tomb)).toBe(hashTag(data));
        await redis.unlink(tomb);
      }),
      { numRuns: 100 },
    );
  });

  test('a key that is not a non-empty string is refused with InvalidOptionsError', async ({ store }) => {
    const notAKey = fc.oneof(fc.constant(''), fc.anything().filter((v) => typeof v !== 'string'));
    await fc.assert(
      fc.asyncProperty(notAKey, async (key) => {
        const k = key as string;
        for (const call of [() => store.get(k), () => store.exists(k), () => store.evict(k), () => store.proxyFromKey(k)]) {
          await expect(call()).rejects.toThrow(InvalidOptionsError);
        }
      }),
      { numRuns: 200 },
    );
  });
});
