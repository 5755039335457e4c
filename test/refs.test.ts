import {
  InvalidRefError,
  ProxyLocker,
  ProxyStoreError,
  ProxyStoreFactoryError,
  REF_MARKER,
  Store,
  fromRef,
  getKey,
  isProxy,
  isResolved,
  proxyReviver,
  resolve,
  toRef,
  unregisterStore,
} from '../src/index.js';
import { describe, expect, test } from './harness/store-fixture.js';

describe('toRef and fromRef', () => {
  test('a ref is a small plain object with no credentials', async ({ store }) => {
    const p = await store.proxy(Array.from({ length: 100_000 }, (_, i) => i));
    const ref = toRef(p);
    expect(ref).toEqual({
      [REF_MARKER]: 1,
      kind: 'proxy',
      store: store.name,
      namespace: store.namespace,
      key: getKey(p),
      shape: 'array',
    });
    const text = JSON.stringify(ref);
    expect(text.length).toBeLessThan(200);
    expect(text).not.toMatch(/redis:\/\/|password|127\.0\.0\.1/);
    await store.evict(getKey(p));
  });

  test('fromRef gives an unresolved proxy of the right shape that resolves to an equal value', async ({ store }) => {
    const value = { list: [1, 2], when: new Date(5), tags: new Set(['a']) };
    const p = await store.proxy(value);
    const q = fromRef<typeof value>(toRef(p));
    expect(isResolved(q)).toBe(false);
    expect(await resolve(q)).toEqual(value);
    const arr = fromRef<number[]>(toRef(await store.proxy([1])));
    expect(Array.isArray(arr)).toBe(true);
    expect(isResolved(arr)).toBe(false);
    await store.evict(getKey(p));
    await store.evict(getKey(arr));
  });

  test('JSON.stringify writes refs and proxyReviver reads them back, nested anywhere', async ({ store }) => {
    const a = await store.proxy([1, 2, 3]);
    const b = await store.proxy(new Map([['x', 1]]));
    const text = JSON.stringify({ event: 'job', inputs: [a, { deep: b }] });
    const parsed = JSON.parse(text, proxyReviver) as { inputs: [number[], { deep: Map<string, number> }] };
    expect(isProxy(parsed.inputs[0])).toBe(true);
    expect(await resolve(parsed.inputs[0])).toEqual([1, 2, 3]);
    await resolve(parsed.inputs[1].deep);
    expect(parsed.inputs[1].deep.get('x')).toBe(1);
    await store.evict(getKey(a));
    await store.evict(getKey(b));
  });

  test('proxyReviver leaves ordinary JSON alone', () => {
    const value = { a: [1, { b: null }], c: 'd', e: { store: 'x', key: 'y' } };
    expect(JSON.parse(JSON.stringify(value), proxyReviver)).toEqual(value);
  });

  test('a ProxyLocker travels as a locked ref and comes back a locker', async ({ store }) => {
    const locker = await store.lockedProxy([1, 2]);
    const back = JSON.parse(JSON.stringify({ locker }), proxyReviver) as { locker: ProxyLocker<number[]> };
    expect(back.locker).toBeInstanceOf(ProxyLocker);
    expect(await resolve(back.locker.unlock())).toEqual([1, 2]);
    await store.evict(getKey(locker.unlock()));
  });

  test('a proxy inside a stored object is stored as its ref and comes back as a proxy', async ({ store }) => {
    const inner = await store.proxy({ payload: 'x'.repeat(1000) });
    const outerKey = await store.put({ label: 'outer', inner });
    const raw = await store.connector.get(outerKey);
    expect(raw!.length).toBeLessThan(300); // the ref, not the 1000-character payload
    const outer = await store.get<{ label: string; inner: { payload: string } }>(outerKey);
    expect(isProxy(outer!.inner)).toBe(true);
    expect(isResolved(outer!.inner)).toBe(false);
    expect((await resolve(outer!.inner)).payload).toHaveLength(1000);
    await store.evict(outerKey);
    await store.evict(getKey(inner));
  });
});

describe('malformed refs', () => {
  const bad: [string, unknown, RegExp][] = [
    ['null', null, /expected an object, got null/],
    ['a string', 'ref', /expected an object, got string/],
    ['an array', [], /got an array/],
    ['no marker', { store: 's', namespace: 'n', key: 'k', shape: 'array' }, /__proxystore__/],
    ['no key', { [REF_MARKER]: 1, store: 's', namespace: 'n', shape: 'array' }, /`key` must be a non-empty string/],
    ['a numeric key', { [REF_MARKER]: 1, store: 's', namespace: 'n', key: 5, shape: 'array' }, /`key`/],
    ['an unknown shape', { [REF_MARKER]: 1, store: 's', namespace: 'n', key: 'k', shape: 'spaceship' }, /`shape`/],
    ['a bad kind', { [REF_MARKER]: 1, kind: 'boss', store: 's', namespace: 'n', key: 'k', shape: 'array' }, /`kind`/],
    ['evict not boolean', { [REF_MARKER]: 1, store: 's', namespace: 'n', key: 'k', shape: 'array', evict: 'yes' }, /`evict`/],
    ['an owned ref without token', { [REF_MARKER]: 1, kind: 'owned', store: 's', namespace: 'n', key: 'k', shape: 'array' }, /needs a `token`/],
  ];
  test.for(bad)('fromRef of %s is InvalidRefError saying what is wrong', ([, ref, message]) => {
    expect(() => fromRef(ref)).toThrow(InvalidRefError);
    expect(() => fromRef(ref)).toThrow(ProxyStoreError);
    expect(() => fromRef(ref)).toThrow(message);
  });

  test('proxyReviver of a marked but malformed ref throws InvalidRefError', () => {
    const text = JSON.stringify({ x: { [REF_MARKER]: 1, store: 's' } });
    expect(() => JSON.parse(text, proxyReviver)).toThrow(InvalidRefError);
  });
});

describe('resolving in a process without the store', () => {
  test('a ref whose store is not registered fails with a clear error', async ({ store }) => {
    const ref = { ...toRef(await store.proxy([1])), store: 'no-such-store' };
    await expect(resolve(fromRef(ref))).rejects.toThrow(ProxyStoreFactoryError);
    await expect(resolve(fromRef(ref))).rejects.toThrow(/no store named "no-such-store" is registered.*PROXYSTORE_REDIS_URL/);
    await store.evict(ref.key);
  });

  test('a ref for another namespace is refused', async ({ store, connect, namespace }) => {
    const p = await store.proxy([1]);
    const other = new Store('other-ns', connect({ namespace: `${namespace}-other` }), {
      register: true,
    });
    const ref = { ...toRef(p), store: 'other-ns' };
    await expect(resolve(fromRef(ref))).rejects.toThrow(/belongs to namespace .* refused/);
    await other.close();
    await store.evict(getKey(p));
  });

  test('a proxy made by a closed store resolves through the registered store of its name', async ({
    connect,
  }) => {
    const first = new Store('reopen', connect(), { register: true });
    const p = await first.proxy([7], { populateTarget: false });
    await first.close();
    const second = new Store('reopen', connect(), { register: true });
    expect(await resolve(p)).toEqual([7]);
    await second.evict(getKey(p));
    await second.close();
    unregisterStore('reopen');
  });
});
