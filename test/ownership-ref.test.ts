/**
 * ProxyStore's tests/store/ref_test.py, ported test by test (same names in
 * camel case words) to run against a real Redis. Where Python relies on
 * implicit resolution (`borrowed == 'value'`), these tests `await resolve()`;
 * where it relies on `del` and reference counting, they use `drop`/`release`,
 * which is what those mean here. Where a Python test has no JavaScript
 * counterpart, the comment says what stands in for it.
 */
import {
  BorrowedError,
  InvalidOptionsError,
  MutableBorrowError,
  ProxyStoreFactoryError,
  ReferenceInvalidError,
  ReferenceNotOwnedError,
  borrow,
  clone,
  drop,
  extract,
  fromRef,
  getKey,
  intoOwned,
  isOwnedProxy,
  isResolved,
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
  type OwnedProxy,
  type RefProxy,
  type Store,
} from '../src/index.js';
import { childEnv, runChild } from './harness/child.js';
import { describe, expect, test } from './harness/ownership.js';

/**
 * ProxyStore's `put_in_store` + `OwnedProxy(factory)`: an owner of an object
 * that was put first, not resolved here.
 */
async function ownedFromPut<T>(store: Store, value: T): Promise<OwnedProxy<T>> {
  const key = await store.put(value);
  return intoOwned(await store.proxyFromKey<T>(key));
}

/** A value's string form, as Python's `==` compares a proxied str. */
async function valueOf(p: unknown): Promise<unknown> {
  return await resolve(p);
}

describe('ref_test.py', () => {
  test('weakref finalizer / owned proxy out of scope evicts (FinalizationRegistry, in a child with --expose-gc)', async ({
    redisUrl,
    namespace,
  }) => {
    const out = await runChild('test/children/finalizer.ts', { env: childEnv({ redisUrl, namespace }), execArgv: ['--expose-gc'] });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.messages[0]).toEqual({
      ownerEvicted: true,
      orphanKeptWhileBorrowed: true,
      orphanEvictedOnRelease: true,
      borrowReleased: true,
    });
  });

  test('borrow behaves as value', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed1 = await borrow(proxy);
    expect(await valueOf(borrowed1)).toBe('value');
    const borrowed2 = await borrow(proxy);
    expect(await valueOf(borrowed2)).toBe('value');
    expect(`${borrowed2}`).toBe('value');
    await release(borrowed1);
    await release(borrowed2);
    await drop(proxy);
  });

  test('mut borrow behaves as value', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await mutBorrow(proxy);
    expect(await valueOf(borrowed)).toBe('value');
    await release(borrowed);
    await drop(proxy);
  });

  test('borrow does not resolve', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    expect(isResolved(proxy)).toBe(false);
    const borrowed = await borrow(proxy);
    expect(isResolved(proxy)).toBe(false);
    expect(isResolved(borrowed)).toBe(false);
    expect(await valueOf(borrowed)).toBe('value');
    await release(borrowed);
    await drop(proxy);
  });

  test('mut borrow does not resolve', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    expect(isResolved(proxy)).toBe(false);
    const borrowed = await mutBorrow(proxy);
    expect(isResolved(proxy)).toBe(false);
    expect(isResolved(borrowed)).toBe(false);
    expect(await valueOf(borrowed)).toBe('value');
    await release(borrowed);
    await drop(proxy);
  });

  test('borrow delete owned proxy error (drop while borrowed is BorrowedError)', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await borrow(proxy);
    const err = await drop(proxy).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BorrowedError);
    expect((err as Error).message).toMatch(new RegExp(`OwnedProxy of key ${getKey(proxy)} cannot be dropped while borrowed \\(1 RefProxy`));
    await release(borrowed);
    await drop(proxy);
  });

  test('clone', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const cloned = await clone(proxy);
    expect(isOwnedProxy(cloned)).toBe(true);
    await drop(proxy);
    expect(await valueOf(cloned)).toBe('value');
    await drop(cloned);
  });

  test('update', async ({ store }) => {
    const proxy = await ownedFromPut(store, [1, 2, 3]);
    await resolve(proxy);
    proxy.push(4);
    await update(proxy);
    expect(await store.get(getKey(proxy))).toEqual([1, 2, 3, 4]);
    await drop(proxy);
  });

  test('update unresolved', async ({ store }) => {
    const proxy = await ownedFromPut(store, [1, 2, 3]);
    await update(proxy);
    expect(await valueOf(proxy)).toEqual([1, 2, 3]);
    await drop(proxy);
  });

  test('pickle owned proxy (toRef moves ownership)', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const ref = toRef(proxy);
    // Old proxy should be invalid.
    expect(() => `${proxy}`).toThrow(ReferenceInvalidError);
    await expect(resolve(proxy)).rejects.toThrow(ReferenceInvalidError);
    const newProxy = fromRef<string>(ref);
    expect(await valueOf(newProxy)).toBe('value');
    await drop(newProxy as OwnedProxy<string>);
  });

  test('pickle ref proxy (the moved borrow still counts until released)', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await borrow(proxy);
    const ref = toRef(borrowed);
    // Only the sent borrow is invalid.
    expect(() => `${borrowed}`).toThrow(ReferenceInvalidError);
    const newBorrowed = fromRef<string>(ref) as RefProxy<string>;
    expect(await valueOf(newBorrowed)).toBe('value');
    // Python: deleting the unpickled borrow does not decrement the owner's
    // count. Here the borrow lives in Redis until someone releases it.
    await expect(drop(proxy)).rejects.toThrow(BorrowedError);
    await release(newBorrowed);
    await drop(proxy);
  });

  test('pickle ref mut proxy', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await mutBorrow(proxy);
    const ref = toRef(borrowed);
    expect(() => `${borrowed}`).toThrow(ReferenceInvalidError);
    const newBorrowed = fromRef<string>(ref) as RefProxy<string>;
    expect(await valueOf(newBorrowed)).toBe('value');
    await expect(borrow(proxy)).rejects.toThrow(MutableBorrowError);
    await release(newBorrowed);
    await drop(proxy);
  });

  test('copy and deepcopy not implemented error (structuredClone refuses handles: use clone())', async ({ store }) => {
    const proxy = await store.ownedProxy(['value']);
    expect(() => structuredClone(proxy)).toThrow(/could not be cloned/);
    const borrowed = await borrow(proxy);
    expect(() => structuredClone(borrowed)).toThrow(/could not be cloned/);
    await release(borrowed);
    const mutable = await mutBorrow(proxy);
    expect(() => structuredClone(mutable)).toThrow(/could not be cloned/);
    await release(mutable);
    await drop(proxy);
  });

  test('borrow unowned error', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await borrow(proxy);
    await expect(borrow(borrowed as unknown as OwnedProxy<string>)).rejects.toThrow(ReferenceNotOwnedError);
    const plain = await store.proxy('plain');
    await expect(borrow(plain as unknown as OwnedProxy<string>)).rejects.toThrow(
      /borrow needs an OwnedProxy, but key \S+ is held here by a plain Proxy: only owned references can be borrowed/,
    );
    await store.evict(getKey(plain));
    await release(borrowed);
    await drop(proxy);
  });

  test('mut borrow unowned error', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await borrow(proxy);
    await expect(mutBorrow(borrowed as unknown as OwnedProxy<string>)).rejects.toThrow(ReferenceNotOwnedError);
    await release(borrowed);
    await drop(proxy);
  });

  test('borrow already mutably error', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await mutBorrow(proxy);
    await expect(borrow(proxy)).rejects.toThrow(MutableBorrowError);
    await release(borrowed);
    await drop(proxy);
  });

  test('mut borrow already immutably error', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await borrow(proxy);
    await expect(mutBorrow(proxy)).rejects.toThrow(MutableBorrowError);
    await release(borrowed);
    await drop(proxy);
  });

  test('mut borrow already mutably error', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await mutBorrow(proxy);
    await expect(mutBorrow(proxy)).rejects.toThrow(MutableBorrowError);
    await release(borrowed);
    await drop(proxy);
  });

  test('clone unowned error', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await borrow(proxy);
    await expect(clone(borrowed as unknown as OwnedProxy<string>)).rejects.toThrow(ReferenceNotOwnedError);
    await release(borrowed);
    await drop(proxy);
  });

  test('update unowned error', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await borrow(proxy);
    await expect(update(borrowed as unknown as OwnedProxy<string>)).rejects.toThrow(ReferenceNotOwnedError);
    await release(borrowed);
    await drop(proxy);
  });

  test('update already borrowed', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const borrowed = await borrow(proxy);
    await expect(update(proxy)).rejects.toThrow(MutableBorrowError);
    await resolve(proxy);
    await expect(update(proxy)).rejects.toThrow(MutableBorrowError);
    await release(borrowed);
    await drop(proxy);
  });

  test('into owned', async ({ store }) => {
    const key = await store.put('value');
    const proxy = await store.proxyFromKey<string>(key);
    expect(isResolved(proxy)).toBe(false);
    const owned = await intoOwned(proxy);
    expect(isResolved(proxy)).toBe(false);
    expect(isOwnedProxy(owned)).toBe(true);
    await drop(owned);
  });

  test('into owned value error', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    await expect(intoOwned(proxy)).rejects.toThrow(InvalidOptionsError);
    await expect(intoOwned(proxy)).rejects.toThrow(/Only a plain proxy can be converted into an owned proxy/);
    await drop(proxy);
  });

  test('into owned factory error (not a proxy made by a store)', async () => {
    await expect(intoOwned(['value'])).rejects.toThrow(ProxyStoreFactoryError);
    await expect(intoOwned(['value'])).rejects.toThrow(/intoOwned needs a proxy made by a store/);
  });

  test.for([true, false])('borrow populate (populateTarget: %s)', async (populateTarget, { store }) => {
    const proxy = await store.ownedProxy('value');
    expect(isResolved(proxy)).toBe(true);
    const borrowed = await borrow(proxy, { populateTarget });
    expect(isResolved(borrowed)).toBe(populateTarget);
    // Python deletes the owner's target; here: an owner that is not resolved.
    const unresolved = await ownedFromPut(store, 'value');
    const borrowed2 = await borrow(unresolved, { populateTarget });
    expect(isResolved(borrowed2)).toBe(false);
    for (const b of [borrowed, borrowed2]) await release(b);
    await drop(proxy);
    await drop(unresolved);
  });

  test.for([true, false])('mut borrow populate (populateTarget: %s)', async (populateTarget, { store }) => {
    const proxy = await store.ownedProxy('value');
    const borrowed = await mutBorrow(proxy, { populateTarget });
    expect(isResolved(borrowed)).toBe(populateTarget);
    await release(borrowed);
    const unresolved = await ownedFromPut(store, 'value');
    const borrowed2 = await mutBorrow(unresolved, { populateTarget });
    expect(isResolved(borrowed2)).toBe(false);
    await release(borrowed2);
    await drop(proxy);
    await drop(unresolved);
  });

  test.for([true, false])('into owned populate (populateTarget: %s)', async (populateTarget, { store }) => {
    const proxy = await store.proxy('value');
    expect(isResolved(proxy)).toBe(true);
    const owned = await intoOwned(proxy, { populateTarget });
    expect(isResolved(owned)).toBe(populateTarget);
    await drop(owned);
  });

  test('del invalid owned proxy (disposing a moved handle does nothing)', async ({ store }) => {
    const proxy = await ownedFromPut(store, 'value');
    const newProxy = fromRef<string>(toRef(proxy)) as OwnedProxy<string>;
    // Should do nothing because the old proxy was made invalid.
    await (proxy as unknown as AsyncDisposable)[Symbol.asyncDispose]();
    expect(await valueOf(newProxy)).toBe('value');
    await drop(newProxy);
  });

  test('clone deepcopy', async ({ store }) => {
    const proxy = await store.ownedProxy([1, 2, 3]);
    expect(isResolved(proxy)).toBe(true);
    const cloned = await clone(proxy);
    expect(isResolved(cloned)).toBe(true);
    cloned.push(4);
    expect(extract(cloned)).toEqual([1, 2, 3, 4]);
    expect(extract(proxy)).toEqual([1, 2, 3]);
    await drop(proxy);
    await drop(cloned);
  });

  test('owned proxy cache defaults (the shape is known without resolving)', async ({ store }) => {
    const proxy = await ownedFromPut(store, [1, 2]);
    expect(isResolved(proxy)).toBe(false);
    expect(Array.isArray(proxy)).toBe(true);
    expect(proxy instanceof Array).toBe(true);
    expect(isResolved(proxy)).toBe(false);
    await drop(proxy);
  });
});
