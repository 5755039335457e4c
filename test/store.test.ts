import { Cluster, Redis } from 'ioredis';
import {
  InvalidOptionsError,
  RedisConnector,
  SerializationError,
  Store,
  StoreExistsError,
  StoreClosedError,
  ProxyStoreError,
  fromRef,
  getStore,
  registerStore,
  resolve,
  toRef,
  unregisterStore,
} from '../src/index.js';
import { connectionOptions, describe, expect, rawClient, test } from './harness/store-fixture.js';

describe('the target', () => {
  test('the store talks to the project target (a single Redis or a Redis Cluster)', async ({ store, target, redis }) => {
    expect(store.connector.isCluster).toBe(target.kind === 'cluster');
    const keys = await store.putBatch(Array.from({ length: 60 }, (_, i) => i));
    expect(await store.connector.getBatch(keys).then((b) => b.every(Boolean))).toBe(true);
    const raw: unknown = redis;
    if (raw instanceof Cluster) {
      // Objects spread over the masters, each readable through the cluster.
      const perNode = await Promise.all(raw.nodes('master').map((n) => n.dbsize()));
      expect(perNode.filter((n) => n > 0).length).toBeGreaterThan(1);
    }
    for (const k of keys) await store.evict(k);
  });
});

describe('put, get, exists, evict', () => {
  const values: [string, unknown][] = [
    ['a string', 'value'],
    ['a Buffer', Buffer.from('value')],
    ['an array', ['value1', 'value2', 'value3']],
    ['a number', 3.25],
    ['null', null],
    ['a nested object', { a: { b: [1, { c: 'd' }] } }],
    ['a Set', new Set([1, 'two'])],
    ['a Date', new Date(1_700_000_000_000)],
    ['a Float64Array', new Float64Array([1.5, -2.25, Infinity])],
    ['a BigInt64Array', new BigInt64Array([1n, -(2n ** 63n)])],
    ['a Uint8Array', new Uint8Array([0, 1, 255])],
  ];
  test.for(values)('round-trips %s', async ([, value], { store }) => {
    const key = await store.put(value);
    expect(await store.exists(key)).toBe(true);
    expect(await store.get(key)).toEqual(value);
    await store.evict(key);
    expect(await store.exists(key)).toBe(false);
    expect(store.isCached(key)).toBe(false);
  });

  test('keeps the exact class of typed arrays and Buffers', async ({ store }) => {
    const keys = await store.putBatch([new Float32Array([1, 2]), Buffer.from('x'), new Uint8Array([1])]);
    const [f, b, u] = await Promise.all(keys.map((k) => store.get(k)));
    expect(f).toBeInstanceOf(Float32Array);
    expect(Buffer.isBuffer(b)).toBe(true);
    expect(u).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(u)).toBe(false);
    for (const k of keys) await store.evict(k);
  });

  test('a Map of Dates round-trips intact', async ({ store }) => {
    const value = new Map<unknown, Date>([
      ['start', new Date(0)],
      [42, new Date('2026-11-26T12:00:00Z')],
    ]);
    const key = await store.put(value);
    const back = await store.get<Map<unknown, Date>>(key);
    await store.evict(key);
    expect(back).toBeInstanceOf(Map);
    expect([...back!.keys()]).toEqual(['start', 42]);
    expect(back!.get(42)).toBeInstanceOf(Date);
    expect(back).toEqual(value);
  });

  test('a nested object with bigints round-trips intact', async ({ store }) => {
    const value = { id: 1n, nested: { big: 2n ** 100n, neg: -(2n ** 70n), list: [3n, { deep: 4n }] }, n: 5 };
    const key = await store.put(value);
    expect(await store.get(key)).toEqual(value);
    await store.evict(key);
  });

  test('a 64 MB Buffer round-trips intact', async ({ store }) => {
    const value = Buffer.allocUnsafe(64 * 1024 * 1024);
    for (let i = 0; i < value.length; i += 4096) value.writeUInt32LE(i, i);
    const key = await store.put(value);
    const back = await store.get<Buffer>(key);
    expect(back?.length).toBe(value.length);
    expect(back!.equals(value)).toBe(true);
    await store.evict(key);
  });

  test('an array of 1,000,000 numbers round-trips intact', async ({ store }) => {
    const value = Array.from({ length: 1_000_000 }, (_, i) => i * 1.5 - 7);
    const key = await store.put(value);
    const back = await store.get<number[]>(key);
    expect(back).toHaveLength(1_000_000);
    expect(back).toEqual(value);
    await store.evict(key);
  });

  test('get of a missing key gives undefined, or the default', async ({ store }) => {
    const key = await store.put(null);
    await store.evict(key);
    expect(await store.get(key)).toBeUndefined();
    expect(await store.get(key, { default: 'alt_value' })).toBe('alt_value');
    expect(await store.exists(key)).toBe(false);
    await store.evict(key); // evicting a missing key is fine
  });

  test('null is stored and read back as null, unlike a missing key', async ({ store }) => {
    const key = await store.put(null);
    expect(await store.get(key, { default: 'missing' })).toBeNull();
    await store.evict(key);
  });

  test('putBatch stores every value in order', async ({ store }) => {
    const values = ['test_value1', 'test_value2', 'test_value3'];
    const keys = await store.putBatch(values);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(3);
    for (const [i, key] of keys.entries()) expect(await store.get(key)).toBe(values[i]);
    for (const key of keys) await store.evict(key);
    expect(await store.putBatch([])).toEqual([]);
  });

  test('keys with odd characters and unicode work', async ({ store }) => {
    for (const key of ['a b', 'ünï©ødé ☃', 'br{ace}s', '}{', '%7B', 'x~y', '*?[', 'new\nline']) {
      expect(await store.get(key)).toBeUndefined();
      expect(await store.exists(key)).toBe(false);
      await store.evict(key);
    }
  });

  test('an empty or non-string key is refused with a clear error', async ({ store }) => {
    await expect(store.get('')).rejects.toThrow(InvalidOptionsError);
    await expect(store.exists(42 as unknown as string)).rejects.toThrow(/store key must be a non-empty string/);
  });
});

describe('serializers', () => {
  test('custom serializer and deserializer per call', async ({ store }) => {
    const bytes = Buffer.from('ABC');
    const key = await store.put(bytes, { serializer: (s) => s as Buffer });
    expect(await store.get(key, { deserializer: (b) => b })).toEqual(bytes);
    await store.evict(key);
  });

  test('a serializer that does not return bytes is a TypeError naming bytes', async ({ store }) => {
    await expect(store.put([1, 2, 3], { serializer: (s) => s as Buffer })).rejects.toThrow(TypeError);
    await expect(store.put([1, 2, 3], { serializer: (s) => s as Buffer })).rejects.toThrow(/bytes/);
    await expect(store.putBatch([[1, 2, 3]], { serializer: (s) => s as Buffer })).rejects.toThrow(/bytes/);
  });

  test('a failing custom deserializer gives SerializationError', async ({ store }) => {
    const key = await store.put('value');
    const failing = () => {
      throw new Error('nope');
    };
    await expect(store.get(key, { deserializer: failing })).rejects.toThrow(SerializationError);
    await expect(store.get(key, { deserializer: failing })).rejects.toThrow(/Failed to deserialize object/);
    await store.evict(key);
  });

  test('store-level serializer and deserializer apply to every call', async ({ connect }) => {
    const store = new Store('ser', connect(), {
      serializer: (v) => Buffer.from(String(v).toUpperCase()),
      deserializer: (b) => `<${b.toString()}>`,
    });
    const key = await store.put('abc');
    expect(await store.get(key)).toBe('<ABC>');
    await store.evict(key);
    await store.close();
  });

  test('reading a custom-serialized object without its deserializer is a clear error', async ({ store }) => {
    const key = await store.put('abc', { serializer: (v) => Buffer.from(String(v)) });
    await expect(store.get(key)).rejects.toThrow(/custom serializer; pass the matching deserializer/);
    await store.evict(key);
  });

  test('garbage bytes under a key give SerializationError naming the key', async ({ store, redis }) => {
    const key = await store.connector.put(Buffer.from('definitely not proxystore bytes'));
    const err = await store.get(key).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerializationError);
    expect((err as SerializationError).key).toBe(key);
    expect((err as Error).message).toContain(key);
    // Bytes with our header but a broken payload.
    await redis.set(store.connector.dataKey(key), Buffer.from([0xb7, 0x4d, 0x6f, 0xc1, 0xc1]));
    await expect(store.get(key)).rejects.toThrow(new RegExp(`Failed to deserialize object at key ${key}`));
    await store.evict(key);
  });

  test('a value msgpack cannot encode is a SerializationError', async ({ store }) => {
    await expect(store.put({ f: Symbol('x') })).rejects.toThrow();
  });
});

describe('cache', () => {
  test('a negative cache size is refused', ({ connect }) => {
    expect(() => new Store('neg', connect(), { cacheSize: -1 })).toThrow(
      InvalidOptionsError,
    );
  });

  test('cache size 16 is the default (as ProxyStore); 0 caches nothing', async ({ store, connect }) => {
    expect(store.cacheSize).toBe(16);
    const off = new Store('cache0', connect(), { cacheSize: 0 });
    expect(off.cacheSize).toBe(0);
    await off.ready();
    const key = await off.put('test_value');
    expect(await off.get(key)).toBe('test_value');
    expect(await off.get(key)).toBe('test_value');
    expect(off.isCached(key)).toBe(false);
    await off.evict(key);
    await off.close();
  });

  test('the default cache keeps what get reads', async ({ store }) => {
    await store.ready();
    const key = await store.put('test_value');
    // A read racing the announcement of its key's own put is not kept (docs/cache.md): the next one is.
    for (let i = 0; !store.isCached(key); i++) {
      expect(i).toBeLessThan(100);
      expect(await store.get(key)).toBe('test_value');
    }
    await store.evict(key);
    expect(store.isCached(key)).toBe(false);
  });

  test('cache size 1 keeps the last value read', async ({ connect }) => {
    const store = new Store('cache1', connect(), { cacheSize: 1 });
    // Reads are cached once the cache's invalidation tracking is on (docs/cache.md).
    await store.ready();
    // A read racing the announcement of its key's own put is not kept (docs/cache.md): read until kept.
    const readUntilCached = async (key: string, value: string) => {
      for (let i = 0; !store.isCached(key); i++) {
        expect(i).toBeLessThan(100);
        expect(await store.get(key)).toBe(value);
      }
    };
    const key1 = await store.put('v1');
    expect(store.isCached(key1)).toBe(false);
    expect(await store.exists(key1)).toBe(true);
    await readUntilCached(key1, 'v1');
    const key2 = await store.put('v2');
    expect(store.isCached(key2)).toBe(false);
    await readUntilCached(key2, 'v2');
    expect(store.isCached(key1)).toBe(false);
    expect(store.isCached(key2)).toBe(true);
    await store.evict(key1);
    await store.evict(key2);
    expect(store.isCached(key2)).toBe(false);
    await store.close();
  });
});

describe('registry, config and close', () => {
  test('register on construction, StoreExistsError on a duplicate, close unregisters', async ({ connect, namespace }) => {
    const name = `reg-${namespace}`;
    expect(getStore(name)).toBeUndefined();
    const store = new Store(name, connect(), { register: true });
    expect(getStore(name)).toBe(store);
    const other = connect();
    expect(() => new Store(name, other, { register: true })).toThrow(StoreExistsError);
    await store.close();
    expect(getStore(name)).toBeUndefined();
  });

  test('registerStore, existOk and unregisterStore by name', async ({ store }) => {
    registerStore(store);
    expect(getStore(store.name)).toBe(store);
    registerStore(store); // the same store again is fine
    const twin = new Store(store.name, new RedisConnector({ url: 'redis://127.0.0.1:1', namespace: store.namespace, redisOptions: { lazyConnect: true } }));
    expect(() => registerStore(twin)).toThrow(StoreExistsError);
    registerStore(twin, { existOk: true });
    expect(getStore(store.name)).toBe(twin);
    unregisterStore(store.name);
    expect(getStore(store.name)).toBeUndefined();
    await twin.close();
  });

  test('close is idempotent and later calls fail clearly', async ({ connect }) => {
    const store = new Store('closing', connect());
    await store.close();
    await store.close();
    await expect(store.put('x')).rejects.toThrow(ProxyStoreError);
    await expect(store.get('k')).rejects.toThrow(/store closing is closed/);
  });

  test('StoreExistsError says how to get or replace the registered store', async ({ connect, namespace }) => {
    const name = `exists-${namespace}`;
    const store = new Store(name, connect(), { register: true });
    const err = (() => {
      try {
        new Store(name, connect(), { register: true });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(StoreExistsError);
    expect(err?.message).toBe(
      `a store named "${name}" is already registered in this process (namespace ${namespace}): use getStore("${name}") to get it, ` +
        `close it or call unregisterStore("${name}") before registering another, or make this one with { register: false } ` +
        '(a store that is not registered cannot resolve refs by name)',
    );
    await store.close();
  });

  test('a closed store throws StoreClosedError, and so does resolving its proxies or refs here', async ({ connect, namespace }) => {
    const name = `closed-${namespace}`;
    const store = new Store(name, connect(), { register: true });
    const made = await store.proxy({ a: 1 }, { populateTarget: false });
    const ref = toRef(made);
    await store.close();
    for (const call of [() => store.put('x'), () => store.get('k'), () => store.proxy([1]), () => store.ready(), () => store.exists('k')]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreClosedError);
      expect((err as Error).message).toMatch(new RegExp(`^store ${name} is closed \\(\\w+\\): make a new Store to go on$`));
    }
    // Its own proxy, and a ref of its name: "closed", not "no store named ... is registered".
    for (const proxy of [made, fromRef(ref)]) {
      const err = await resolve(proxy).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreClosedError);
      expect((err as Error).message).toBe(
        `store "${name}" (namespace ${namespace}) was closed in this process: cannot resolve key ${ref.key}; register a new store of that name to resolve it`,
      );
    }
    // A new store of that name takes over.
    const again = new Store(name, connect(), { register: true });
    expect(await resolve(fromRef(ref))).toEqual({ a: 1 });
    await again.evict(ref.key);
    await again.close();
  });

  test('config and fromConfig rebuild an equivalent store', async ({ connect }) => {
    const store = new Store('cfg', connect(), {
      cacheSize: 3,
      populateTarget: false,
      leaseTtl: 5,
    });
    const key = await store.put([1, 2, 3]);
    const config = store.config();
    expect(JSON.parse(JSON.stringify(config))).toEqual(config);
    const copy = Store.fromConfig(config);
    expect(copy.config()).toEqual(config);
    expect(await copy.get(key)).toEqual([1, 2, 3]);
    await copy.evict(key);
    await copy.close();
    await store.close();
  });

  test('a store over your own client never closes it', async ({ target, namespace }) => {
    const client = rawClient(target);
    const store = new Store('own-client', new RedisConnector({ client, namespace }));
    const key = await store.put('x');
    await store.close();
    expect(await client.ping()).toBe('PONG');
    await client.del(new RedisConnector({ client, namespace }).dataKey(key));
    await client.quit();
  });

  test('the config of a store over your own client records its address, and fromConfig rebuilds a working store', async ({ target, namespace }) => {
    const client = rawClient(target);
    const store = new Store('own-client-cfg', new RedisConnector({ client, namespace }), { leaseTtl: 7 });
    const key = await store.put({ from: 'own client' });
    const config = store.config();
    expect(JSON.parse(JSON.stringify(config))).toEqual(config);
    if (target.kind === 'single') {
      const { hostname, port } = new URL(target.url);
      expect(config.connector.url).toBe(`redis://${hostname}:${port}/0`);
    } else {
      expect(config.connector.nodes).toEqual(target.nodes);
    }
    expect(config.leaseTtl).toBe(7);
    const copy = Store.fromConfig(config);
    expect(copy.connector.isCluster).toBe(target.kind === 'cluster');
    expect(await copy.get(key)).toEqual({ from: 'own client' });
    await copy.evict(key);
    await copy.close();
    await store.close();
    await client.quit();
  });
});

describe('RedisConnector options', () => {
  test('a namespace with a brace is refused', ({ target }) => {
    const where = connectionOptions(target);
    expect(() => new RedisConnector({ ...where, namespace: 'app{1}' })).toThrow(InvalidOptionsError);
    expect(() => new RedisConnector({ ...where, namespace: 'app}' })).toThrow(/brace/);
    expect(() => new RedisConnector({ ...where, namespace: '' })).toThrow(/non-empty/);
    expect(() => new RedisConnector({ ...where, namespace: 'has space' })).toThrow(/whitespace/);
  });

  test('exactly one of url, nodes and client', ({ target }) => {
    expect(() => new RedisConnector({ namespace: 'x' })).toThrow(/exactly one of `url`, `nodes` or `client`, got none/);
    const client = new Redis({ lazyConnect: true });
    expect(() => new RedisConnector({ ...connectionOptions(target), client, namespace: 'x' })).toThrow(/exactly one/);
    expect(() => new RedisConnector({ url: 'redis://h', nodes: [{ host: 'h', port: 1 }], namespace: 'x' })).toThrow(/url and nodes/);
    expect(() => new RedisConnector({ url: 'http://x', namespace: 'x' })).toThrow(/redis:\/\//);
    expect(() => new RedisConnector({ nodes: [], namespace: 'x' })).toThrow(/non-empty list of \{ host, port \}/);
    client.disconnect();
  });

  test('all keys of an object share one hash tag under the namespace', ({ connect, namespace }) => {
    const c = connect();
    const tag = (k: string) => /\{([^}]*)\}/.exec(k)?.[1];
    for (const key of ['abc', 'L1~xyz', 'br{a}ce', '}x']) {
      const data = c.keys.object('d', key);
      expect(data.startsWith(`${namespace}:`)).toBe(true);
      expect(tag(data)).toBe(tag(c.keys.object('tomb', key)));
      expect(tag(data)).toBe(tag(c.keys.object('own', key)));
      expect(tag(data)?.length).toBeGreaterThan(0);
    }
    expect(tag(c.keys.object('d', 'L1~xyz'))).toBe(tag(c.keys.lifetime('members', 'L1')));
  });
});
