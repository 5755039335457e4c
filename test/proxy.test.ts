import { inspect } from 'node:util';
import {
  InvalidOptionsError,
  NonProxiableTypeError,
  ProxyLocker,
  ProxyNotResolvedError,
  ProxyResolveMissingKeyError,
  ProxyStoreFactoryError,
  Store,
  extract,
  fromRef,
  getKey,
  isProxy,
  isResolved,
  resolve,
  toRef,
  type Lifetime,
} from '../src/index.js';
import { describe, expect, test } from './harness/store-fixture.js';

describe('creating proxies', () => {
  test('proxy() returns a resolved proxy by default (populateTarget)', async ({ store }) => {
    const p = await store.proxy([1, 2, 3]);
    expect(isProxy(p)).toBe(true);
    expect(isResolved(p)).toBe(true);
    expect(p).toEqual([1, 2, 3]);
    expect(await store.get(getKey(p))).toEqual([1, 2, 3]);
    await store.evict(getKey(p));
  });

  test('populateTarget: false gives an unresolved proxy that resolves to the value', async ({ store }) => {
    const p = await store.proxy([1, 2, 3], { populateTarget: false });
    expect(isResolved(p)).toBe(false);
    expect(await resolve(p)).toEqual([1, 2, 3]);
    expect(isResolved(p)).toBe(true);
    expect([...p]).toEqual([1, 2, 3]);
    await store.evict(getKey(p));
  });

  test.for([true, false])('the store default populateTarget=%s applies unless overridden', async (populate, { connect }) => {
    const store = new Store('pt', connect(), { populateTarget: populate });
    const keys: string[] = [];
    const p1 = await store.proxy('value');
    keys.push(getKey(p1));
    expect(isResolved(p1)).toBe(populate);
    const p2 = await store.proxy('value', { populateTarget: true });
    keys.push(getKey(p2));
    expect(isResolved(p2)).toBe(true);
    const p3 = await store.proxy('value', { populateTarget: false });
    keys.push(getKey(p3));
    expect(isResolved(p3)).toBe(false);
    for (const k of keys) await store.evict(k);
    await store.close();
  });

  test('null, undefined and booleans are not proxiable', async ({ store }) => {
    for (const v of [null, undefined, true, false]) {
      await expect(store.proxy(v)).rejects.toThrow(NonProxiableTypeError);
      expect(await store.proxy(v, { skipNonproxiable: true })).toBe(v);
    }
  });

  test('proxyBatch proxies each value and passes non-proxiable ones through when asked', async ({ store }) => {
    const inputs = [null, 'string', false, true, [1, 2, 3], 'string'];
    const out = await store.proxyBatch(inputs, { skipNonproxiable: true, populateTarget: false });
    expect(out.map((v) => isProxy(v))).toEqual([false, true, false, false, true, true]);
    for (const p of out.filter((v) => isProxy(v))) {
      await resolve(p);
    }
    expect(out[4]).toEqual([1, 2, 3]);
    await expect(store.proxyBatch(['string', null, 'string'])).rejects.toThrow(NonProxiableTypeError);
    for (const p of out.filter((v) => isProxy(v))) await store.evict(getKey(p));
  });

  test('proxyFromKey knows the shape before resolving and reads nothing else', async ({ store }) => {
    const key = await store.put(new Map([['a', 1]]));
    const p = await store.proxyFromKey<Map<string, number>>(key);
    expect(isResolved(p)).toBe(false);
    expect(p instanceof Map).toBe(true);
    await resolve(p);
    expect(p.get('a')).toBe(1);
    await store.evict(key);
  });

  test('a proxy of a missing key fails to resolve with ProxyResolveMissingKeyError', async ({ store }) => {
    const p = await store.proxy([1, 2, 3], { populateTarget: false });
    const key = getKey(p);
    await store.evict(key);
    await expect(resolve(p)).rejects.toThrow(ProxyResolveMissingKeyError);
    const q = await store.proxyFromKey(key);
    await expect(resolve(q)).rejects.toThrow(new RegExp(`key ${key} is missing`));
  });

  test('lockedProxy wraps the proxy; unlock gives it back', async ({ store }) => {
    const locker = await store.lockedProxy([1, 2, 3]);
    expect(locker).toBeInstanceOf(ProxyLocker);
    const p = locker.unlock();
    expect(isProxy(p)).toBe(true);
    expect(p).toEqual([1, 2, 3]);
    expect(await store.lockedProxy(null, { skipNonproxiable: true })).toBeNull();
    await expect(store.lockedProxy(null)).rejects.toThrow(NonProxiableTypeError);
    await store.evict(getKey(p));
  });

  test('evict together with something that is not a lifetime is InvalidOptionsError naming the lifetime', async ({ store }) => {
    // evict and lifetime compose (docs/lifetimes.md, "Combining lifetimes, reads and ownership"); a bad lifetime is still refused.
    const lifetime = { id: 'x' } as unknown as Lifetime;
    await expect(store.proxy('v', { evict: true, lifetime })).rejects.toThrow(InvalidOptionsError);
    await expect(store.proxy('v', { evict: true, lifetime })).rejects.toThrow(/`lifetime` must be a ContextLifetime/);
    await expect(store.proxyBatch(['v'], { evict: true, lifetime })).rejects.toThrow(/`lifetime` must be a ContextLifetime/);
    await expect(store.lockedProxy('v', { evict: true, lifetime })).rejects.toThrow(/`lifetime` must be a ContextLifetime/);
    await expect(store.proxyFromKey('k', { evict: true, lifetime })).rejects.toThrow(/`lifetime` must be a ContextLifetime/);
  });
});

describe('transparency once resolved', () => {
  test('property reads, methods, iteration, spread and keys of objects and arrays', async ({ store }) => {
    // The default serializer refuses functions; JSON drops them, and the proxy keeps the local object.
    const json = (v: unknown) => Buffer.from(JSON.stringify(v));
    const obj = await store.proxy({ a: 1, nested: { b: [2, 3] }, greet(this: { a: number }) { return this.a; } }, { serializer: json });
    expect(obj.a).toBe(1);
    expect(obj.nested.b[1]).toBe(3);
    expect(obj.greet()).toBe(1);
    expect({ ...obj }).toEqual({ a: 1, nested: { b: [2, 3] }, greet: obj.greet });
    expect(Object.keys(obj)).toEqual(['a', 'nested', 'greet']);
    expect('a' in obj).toBe(true);
    obj.a = 5;
    expect(obj.a).toBe(5);

    const arr = await store.proxy([3, 1, 2]);
    expect(arr.length).toBe(3);
    expect(arr.map((x) => x * 2)).toEqual([6, 2, 4]);
    expect([...arr]).toEqual([3, 1, 2]);
    expect(Array.isArray(arr)).toBe(true);
    expect(arr instanceof Array).toBe(true);
    expect(Array.from(arr)).toEqual([3, 1, 2]);
    expect(JSON.stringify(extract(arr))).toBe('[3,1,2]');
    for (const p of [obj, arr]) await store.evict(getKey(p));
  });

  test('Map, Set, Date and typed-array methods work on the proxy', async ({ store }) => {
    const map = await store.proxy(new Map([['k', 1]]), { populateTarget: false });
    const set = await store.proxy(new Set([1, 2]), { populateTarget: false });
    const date = await store.proxy(new Date(86_400_000), { populateTarget: false });
    const f64 = await store.proxy(new Float64Array([1.5, 2.5]), { populateTarget: false });
    for (const p of [map, set, date, f64]) await resolve(p);
    expect(map.get('k')).toBe(1);
    expect(map.size).toBe(1);
    expect(map.has('k')).toBe(true);
    expect([...map]).toEqual([['k', 1]]);
    expect(map instanceof Map).toBe(true);
    expect(set.has(2)).toBe(true);
    expect(set.size).toBe(2);
    expect([...set]).toEqual([1, 2]);
    expect(date.getTime()).toBe(86_400_000);
    expect(date.toISOString()).toBe('1970-01-02T00:00:00.000Z');
    expect(date instanceof Date).toBe(true);
    expect(f64[1]).toBe(2.5);
    expect(f64.length).toBe(2);
    expect(f64.reduce((a, b) => a + b, 0)).toBe(4);
    expect([...f64]).toEqual([1.5, 2.5]);
    expect(f64 instanceof Float64Array).toBe(true);
    expect(map.get).toBe(map.get); // bound methods are stable
    for (const p of [map, set, date, f64]) await store.evict(getKey(p));
  });

  test('strings, numbers and bigints are proxied as boxed values', async ({ store }) => {
    const s = await store.proxy('hello');
    const n = await store.proxy(42);
    const b = await store.proxy(10n ** 20n);
    expect(s.length).toBe(5);
    expect(s.toUpperCase()).toBe('HELLO');
    expect(`${s}!`).toBe('hello!');
    expect(+n + 1).toBe(43);
    expect(n.toFixed(1)).toBe('42.0');
    expect(b.toString()).toBe('100000000000000000000');
    expect(extract(s)).toBe('hello');
    expect(extract(b)).toBe(10n ** 20n);
    for (const p of [s, n, b]) await store.evict(getKey(p));
  });
});

describe('unresolved proxies', () => {
  test('touching one throws ProxyNotResolvedError naming the key', async ({ store }) => {
    const p = await store.proxy({ a: 1 }, { populateTarget: false });
    const key = getKey(p);
    const touches: (() => unknown)[] = [
      () => p.a,
      () => Object.keys(p),
      () => 'a' in p,
      () => ({ ...p }),
      () => `${p as unknown as string}`,
      () => {
        (p as { a: number }).a = 2;
      },
      () => extract(p),
    ];
    for (const touch of touches) {
      expect(touch).toThrow(ProxyNotResolvedError);
      expect(touch).toThrow(new RegExp(`${key}.*await resolve\\(proxy\\)`));
    }
    expect(isResolved(p)).toBe(false);
    await store.evict(key);
  });

  test('peeking never resolves: then, util.inspect, Symbol.toStringTag, toJSON, instanceof', async ({ store }) => {
    const p = await store.proxy(new Map([['a', 1]]), { populateTarget: false });
    expect((p as unknown as { then: unknown }).then).toBeUndefined();
    expect(inspect(p)).toBe(`Proxy<${getKey(p)}, unresolved>`);
    expect(String(p[Symbol.toStringTag])).toBe('Map');
    expect(JSON.parse(JSON.stringify(p))).toEqual(toRef(p));
    expect(p instanceof Map).toBe(true);
    expect(isResolved(p)).toBe(false);
    await resolve(p);
    expect(inspect(p)).toBe(inspect(new Map([['a', 1]])));
    await store.evict(getKey(p));
  });

  test('returning an unresolved ephemeral proxy from an async function neither resolves nor consumes it', async ({
    store,
  }) => {
    const made = await store.proxy({ big: 'object' }, { evict: true });
    const key = getKey(made);
    const p = fromRef<{ big: string }>(toRef(made));
    const passThrough = async () => p;
    const back = await passThrough();
    expect(back).toBe(p);
    expect(isResolved(p)).toBe(false);
    expect(await store.exists(key)).toBe(true);
    await Promise.resolve(p);
    expect(await store.exists(key)).toBe(true);
    expect(await resolve(p)).toEqual({ big: 'object' });
    expect(await store.exists(key)).toBe(false);
  });

  test('concurrent resolves of one proxy share one fetch', async ({ store }) => {
    const made = await store.proxy([1], { evict: true });
    const p = fromRef<number[]>(toRef(made));
    const [a, b] = await Promise.all([resolve(p), resolve(p)]);
    expect(a).toBe(b);
  });
});

describe('free functions on non-proxies', () => {
  test('getKey, isResolved and resolve of a plain value are clear errors', async () => {
    expect(isProxy([1])).toBe(false);
    expect(() => getKey([1])).toThrow(ProxyStoreFactoryError);
    expect(() => isResolved({})).toThrow(/needs a proxy made by a store/);
    await expect(resolve({})).rejects.toThrow(ProxyStoreFactoryError);
    expect(() => toRef('x')).toThrow(ProxyStoreFactoryError);
  });
});
