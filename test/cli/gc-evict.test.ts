/**
 * The gcEvict script: it evicts an object only if, when it runs, nothing
 * holds it, so an orphan that got an owner or became a lifetime member after
 * gc looked at it is kept (single and cluster projects).
 */
import { randomId } from '../../src/keys.js';
import { ContextLifetime, InvalidOptionsError, RedisConnector, Store, getKey, intoOwned } from '../../src/index.js';
import { connectionOptions } from '../harness/target.js';
import { describe, expect, test } from '../harness/store-fixture.js';

function evict(store: Store, key: string, minIdle = 0) {
  const keys = store.connector.keys;
  const data = keys.object('d', key);
  const prefix = data.slice(0, data.indexOf('}:d:') + 2);
  return store.connector.scripts.run(
    'gcEvict',
    {
      data,
      record: keys.object('own', key),
      leases: keys.object('lease', key),
      members: `${prefix}members`,
      done: keys.object('done', key),
      rules: keys.object('rules', key),
      refs: keys.object('refs', key),
    },
    { member: data.slice(prefix.length + 2), minIdle, token: randomId() },
  );
}

describe('gcEvict', () => {
  test('evicts an object that belongs to nothing', async ({ store }) => {
    const key = await store.put('orphan');
    expect(await evict(store, key)).toBe(1);
    expect(await store.exists(key)).toBe(false);
    expect(await evict(store, key)).toBe(0); // gone already
  });

  test('keeps an object that got an owner since gc looked at it', async ({ store }) => {
    const proxy = await store.proxy(['was an orphan']);
    const owned = await intoOwned(proxy);
    expect(await evict(store, getKey(proxy))).toBe(2);
    expect(await store.exists(getKey(proxy))).toBe(true);
    void owned;
  });

  test('keeps an own member of a lifetime', async ({ store }) => {
    const lifetime = new ContextLifetime(store);
    const key = await store.put('member', { lifetime });
    expect(await evict(store, key)).toBe(3);
    expect(await store.exists(key)).toBe(true);
    await lifetime.close();
  });

  test('keeps an object that has its own ttl: it goes by itself', async ({ store }) => {
    const key = await store.put('expiring', { ttl: 600 });
    expect(await evict(store, key)).toBe(6);
    expect(await store.exists(key)).toBe(true);
    await store.evict(key);
  });

  test('evicts an orphan with a reads budget together with its rules record', async ({ store, redis }) => {
    const key = await store.put('budget', { reads: 3 });
    expect(await evict(store, key)).toBe(1);
    expect(await redis.exists(store.connector.keys.object('d', key), store.connector.keys.object('rules', key))).toBe(0);
  });

  test('keeps an object used more recently than minIdle seconds', async ({ store }) => {
    const key = await store.put('fresh');
    expect(await evict(store, key, 3600)).toBe(4);
    expect(await store.exists(key)).toBe(true);
    await store.evict(key);
  });

  test('keeps a data key that holds another Redis type (not written by the library)', async ({ store, redis }) => {
    const key = 'a-hash';
    await redis.hset(store.connector.keys.object('d', key), 'f', 'v');
    expect(await evict(store, key)).toBe(5);
    expect(await redis.type(store.connector.keys.object('d', key))).toBe('hash');
    await redis.del(store.connector.keys.object('d', key));
  });

  test('refuses KEYS that are not one object\'s, and a minIdle that is not whole seconds', async ({ store }) => {
    const keys = store.connector.keys;
    const a = keys.object('d', 'a');
    const b = keys.object('own', 'a~b'); // the same hash tag, another object
    await expect(
      store.connector.scripts.run(
        'gcEvict',
        { data: a, record: b, leases: keys.object('lease', 'a'), members: `${store.namespace}:{a}:members`, done: keys.object('done', 'a'), rules: keys.object('rules', 'a'), refs: keys.object('refs', 'a') },
        { member: 'a', minIdle: 0, token: randomId() },
      ),
    ).rejects.toThrow(InvalidOptionsError);
    await expect(
      store.connector.scripts.run(
        'gcEvict',
        { data: a, record: keys.object('own', 'a'), leases: keys.object('lease', 'a'), members: `${store.namespace}:{a}:members`, done: keys.object('done', 'a'), rules: keys.object('rules', 'a'), refs: keys.object('refs', 'a') },
        { member: 'a', minIdle: '1.5', token: randomId() },
      ),
    ).rejects.toThrow(/minIdle must be an integer from 0 to 999999999999, got 1\.5/);
  });

  test('a chunked object (a hash with its manifest) is evicted whole; its manifest is read only after the idle check', async ({ target, namespace, redis }) => {
    const chunked = new Store(`gc-evict-chunks-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), { chunkSize: 1024 });
    try {
      const key = await chunked.put(Buffer.alloc(5000, 1));
      const data = chunked.connector.keys.object('d', key);
      expect(await redis.type(data)).toBe('hash');
      // Used 100 s ago: kept for --older-than 3600, and looking did not make it look used now.
      const dump = await redis.dumpBuffer(data);
      await redis.restore(data, 0, dump, 'REPLACE', 'IDLETIME', 100);
      expect(await evict(chunked, key, 3600)).toBe(4);
      expect(await redis.object('IDLETIME', data)).toBeGreaterThanOrEqual(100);
      expect(await evict(chunked, key)).toBe(1);
      expect(await redis.exists(data)).toBe(0);
    } finally {
      await chunked.close();
    }
  });
});
