/**
 * Ownership rules beyond ProxyStore's own tests: one owner per object,
 * tokens checked in Redis, ends of life (`await using`, store.close), the
 * Redis layout (one hash tag, TTLs), and the errors' messages.
 */
import {
  AlreadyOwnedError,
  BorrowedError,
  ContextLifetime,
  InvalidOptionsError,
  LifetimeEndedError,
  MutableBorrowError,
  NonProxiableTypeError,
  ProxyResolveMissingKeyError,
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
  isRefMutProxy,
  isRefProxy,
  isValid,
  mutBorrow,
  proxyReviver,
  release,
  resolve,
  toRef,
  update,
  type OwnedProxy,
  type RefProxy,
} from '../src/index.js';
import { tagOf } from '../src/keys.js';
import { describe, expect, makeOwnershipStore, namespaceKeys, objectLeftovers, test } from './harness/ownership.js';

describe('one owner per object', () => {
  test('intoOwned of a key that already has an owner is AlreadyOwnedError', async ({ store }) => {
    const owned = await store.ownedProxy([1]);
    const again = await store.proxyFromKey(getKey(owned));
    const err = await intoOwned(again).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlreadyOwnedError);
    expect((err as Error).message).toContain(getKey(owned));
    expect((err as Error).message).toMatch(/one owner per object.*clone\(\)/);
    await drop(owned);
  });

  test('intoOwned of a plain proxy whose object is gone is ProxyResolveMissingKeyError', async ({ store }) => {
    const p = await store.proxy('x');
    await store.evict(getKey(p));
    await expect(intoOwned(p)).rejects.toThrow(ProxyResolveMissingKeyError);
  });

  test('intoOwned clears the proxy evict flag, so resolving the plain proxy no longer consumes it', async ({ store }) => {
    const p = await store.proxy({ a: 1 }, { evict: true, populateTarget: false });
    const owned = await intoOwned(p);
    expect(await resolve(p)).toEqual({ a: 1 });
    expect(await store.exists(getKey(owned))).toBe(true);
    await drop(owned);
  });

  test('intoOwned of a borrow is InvalidOptionsError', async ({ store }) => {
    const owned = await store.ownedProxy('x');
    const shared = await borrow(owned);
    await expect(intoOwned(shared)).rejects.toThrow(InvalidOptionsError);
    await release(shared);
    await drop(owned);
  });

  test('an object whose owner went away while borrowed cannot be owned again, and goes with its last borrow', async ({
    store,
    target,
    namespace,
  }) => {
    const owned = await store.ownedProxy('x');
    const ref = toRef(await borrow(owned)); // in transit: its receiver will hold it
    await store.close(); // the owner is abandoned; the borrow stays live in Redis
    const receiver = makeOwnershipStore(target, namespace); // same name: revives the ref
    const shared = fromRef<string>(ref) as RefProxy<string>;
    expect(await resolve(shared)).toBe('x');
    const err = await intoOwned(await receiver.proxyFromKey(getKey(owned))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlreadyOwnedError);
    expect((err as Error).message).toMatch(/lost its owner and is evicted when its last borrow ends/);
    await release(shared);
    expect(await receiver.exists(getKey(owned))).toBe(false);
    await receiver.close();
  });
});

describe('tokens are checked in Redis', () => {
  test('a second release of a borrow is ReferenceInvalidError', async ({ store }) => {
    const owned = await store.ownedProxy('x');
    const shared = await borrow(owned);
    await release(shared);
    await expect(release(shared)).rejects.toThrow(ReferenceInvalidError);
    // Through a copy of its ref, the same token is refused by the script itself.
    await drop(owned);
  });

  test('a forged or stale token is refused by the script', async ({ store }) => {
    const owned = await store.ownedProxy('x');
    const shared = await borrow(owned);
    const ref = toRef(shared);
    const revived = fromRef<string>(ref) as RefProxy<string>;
    await release(revived);
    // A second revival of the same ref holds a token Redis no longer knows.
    const stale = JSON.parse(JSON.stringify(ref), proxyReviver) as RefProxy<string>;
    const err = await release(stale).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReferenceInvalidError);
    expect((err as Error).message).toMatch(new RegExp(`borrow of key ${getKey(owned)} is invalid`));
    const forged = fromRef<string>({ ...ref, token: 'not-a-real-token-000000' }) as RefProxy<string>;
    await expect(release(forged)).rejects.toThrow(ReferenceInvalidError);
    await drop(owned);
  });

  test('release of an owner or a plain proxy is InvalidOptionsError; drop of a borrow is ReferenceNotOwnedError', async ({ store }) => {
    const owned = await store.ownedProxy('x');
    await expect(release(owned as unknown as RefProxy<string>)).rejects.toThrow(/use drop\(\)/);
    await expect(release(owned as unknown as RefProxy<string>)).rejects.toThrow(InvalidOptionsError);
    const shared = await borrow(owned);
    await expect(drop(shared as unknown as OwnedProxy<string>)).rejects.toThrow(ReferenceNotOwnedError);
    await release(shared);
    await drop(owned);
    await expect(drop(owned)).rejects.toThrow(ReferenceInvalidError);
  });

  test('a dropped or moved owner cannot borrow, clone or update', async ({ store }) => {
    const owned = await store.ownedProxy([1]);
    const moved = fromRef<number[]>(toRef(owned)) as OwnedProxy<number[]>;
    for (const op of [() => borrow(owned), () => mutBorrow(owned), () => clone(owned), () => update(owned), () => drop(owned)]) {
      await expect(op()).rejects.toThrow(/moved with toRef/);
    }
    await drop(moved);
    await expect(borrow(moved)).rejects.toThrow(ReferenceInvalidError);
  });

  test('update through the mutable borrow writes; the owner cannot update meanwhile', async ({ store }) => {
    const owned = await store.ownedProxy({ n: 1 });
    const writer = await mutBorrow(owned, { populateTarget: false });
    await resolve(writer);
    writer.n = 2;
    await update(writer);
    await expect(update(owned)).rejects.toThrow(/cannot be updated until they are released/);
    await release(writer);
    expect(await store.get(getKey(owned))).toEqual({ n: 2 });
    await drop(owned);
  });

  test('clone of a mutably borrowed owner is MutableBorrowError (the value may be changing)', async ({ store }) => {
    const owned = await store.ownedProxy([1]);
    const writer = await mutBorrow(owned);
    await expect(clone(owned)).rejects.toThrow(MutableBorrowError);
    await release(writer);
    const shared = await borrow(owned);
    const copy = await clone(owned); // shared borrows do not stop a clone
    await release(shared);
    await drop(copy);
    await drop(owned);
  });
});

describe('ends of life', () => {
  test('await using drops an owner and releases borrows at the end of the block', async ({ store }) => {
    let key = '';
    {
      await using owned = await store.ownedProxy([1, 2]);
      key = getKey(owned);
      {
        await using shared = await borrow(owned);
        await using writerLater = await store.ownedProxy('other');
        expect(extract(shared)).toEqual([1, 2]);
        void writerLater;
      }
      {
        await using writer = await mutBorrow(owned); // possible: the shared borrow ended
        void writer;
      }
    }
    expect(await store.exists(key)).toBe(false);
  });

  test('await using an owner that is still borrowed throws BorrowedError', async ({ store }) => {
    let shared: RefProxy<string> | undefined;
    const block = async () => {
      await using owned = await store.ownedProxy('x');
      shared = await borrow(owned);
    };
    await expect(block()).rejects.toThrow(BorrowedError);
    await release(shared as RefProxy<string>);
  });

  test('await using a handle that moved away does nothing', async ({ store }) => {
    let ref: unknown;
    {
      await using owned = await store.ownedProxy('x');
      ref = toRef(owned);
    }
    const revived = fromRef<string>(ref) as OwnedProxy<string>;
    expect(await resolve(revived)).toBe('x');
    await drop(revived);
  });

  test('store.close() ends the handles it holds: borrows released, owners dropped', async ({ target, namespace, redis }) => {
    const store = makeOwnershipStore(target, namespace);
    const owned = await store.ownedProxy([1]);
    const shared = await borrow(owned);
    const lone = await store.ownedProxy([2]);
    expect((await namespaceKeys(redis, namespace)).length).toBe(6);
    await store.close();
    expect(await objectLeftovers(redis, namespace)).toEqual([]);
    for (const h of [owned, shared, lone]) expect(isValid(h)).toBe(false);
    expect(() => extract(owned)).toThrow(/store store-\S+ was closed/);
  });
});

describe('creating owned objects', () => {
  test('ownedProxy with evict, reads or ttl is InvalidOptionsError; with a lifetime that is not one too', async ({ store }) => {
    await expect(store.ownedProxy('x', { evict: true } as never)).rejects.toThrow(InvalidOptionsError);
    await expect(store.ownedProxy('x', { lifetime: {} } as never)).rejects.toThrow(/`lifetime` must be a ContextLifetime/);
    await expect(store.ownedProxy('x', { reads: 2 } as never)).rejects.toThrow(/ownedProxy takes none of `evict`, `reads` and `ttl`/);
    await expect(store.ownedProxy('x', { ttl: 5 } as never)).rejects.toThrow(InvalidOptionsError);
  });

  test('ownedProxy of null, undefined or a boolean is NonProxiableTypeError unless skipNonproxiable', async ({ store }) => {
    for (const v of [null, undefined, true]) await expect(store.ownedProxy(v)).rejects.toThrow(NonProxiableTypeError);
    expect(await store.ownedProxy(null, { skipNonproxiable: true })).toBe(null);
  });

  test('an owned object keeps its data, record and leases under one hash tag, each expiring 3 leaseTtl after its last lease', async ({ store, redis }) => {
    const owned = await store.ownedProxy(new Map([['k', 1]]));
    const shared = await borrow(owned);
    const keys = await namespaceKeys(redis, store.namespace);
    expect(keys).toHaveLength(3);
    expect(new Set(keys.map((k) => /\{[^}]*\}/.exec(k)?.[0])).size).toBe(1);
    for (const k of keys) {
      const ttl = await redis.pttl(k);
      expect(ttl).toBeGreaterThan(0);
      // The last lease ends within leaseTtl; the keys outlive it by 3 leaseTtl (the outage margin).
      expect(ttl).toBeGreaterThan(3 * store.leaseTtl * 1000);
      expect(ttl).toBeLessThanOrEqual(4 * store.leaseTtl * 1000);
    }
    const copy = await clone(owned);
    expect(tagOf(getKey(copy))).toBe(tagOf(getKey(owned)));
    expect(extract(copy)).toEqual(new Map([['k', 1]]));
    await release(shared);
    await drop(copy);
    await drop(owned);
  });
});

describe('handles and refs', () => {
  test('type guards tell the kinds apart without resolving', async ({ store }) => {
    const owned = await store.ownedProxy('x', { populateTarget: false });
    const shared = await borrow(owned);
    const plain = await store.proxy('y');
    expect([isOwnedProxy(owned), isRefProxy(owned), isRefMutProxy(owned)]).toEqual([true, false, false]);
    expect([isOwnedProxy(shared), isRefProxy(shared), isRefMutProxy(shared)]).toEqual([false, true, false]);
    expect([isOwnedProxy(plain), isRefProxy(plain), isOwnedProxy('x')]).toEqual([false, false, false]);
    await release(shared);
    const writer = await mutBorrow(owned);
    expect(isRefMutProxy(writer)).toBe(true);
    await release(writer);
    await drop(owned);
    await store.evict(getKey(plain));
  });

  test('JSON.stringify of a handle moves it; proxyReviver revives it as the same kind', async ({ store }) => {
    const owned = await store.ownedProxy([1, 2]);
    const shared = await borrow(owned);
    const event = JSON.parse(JSON.stringify({ input: shared }), proxyReviver) as { input: RefProxy<number[]> };
    expect(isValid(shared)).toBe(false);
    expect(isRefProxy(event.input)).toBe(true);
    expect(await resolve(event.input)).toEqual([1, 2]);
    await release(event.input);
    await drop(owned);
  });

  test('a handle nested in a stored object moves with it, and whoever reads the object holds it', async ({ store }) => {
    const owned = await store.ownedProxy({ payload: [1, 2, 3] });
    const shared = await borrow(owned);
    const envelope = await store.put({ label: 'job', input: shared });
    expect(isValid(shared)).toBe(false);
    const job = await store.get<{ label: string; input: RefProxy<{ payload: number[] }> }>(envelope);
    expect(isRefProxy(job!.input)).toBe(true);
    expect((await resolve(job!.input)).payload).toEqual([1, 2, 3]);
    await expect(drop(owned)).rejects.toThrow(BorrowedError);
    await release(job!.input);
    await drop(owned);
    await store.evict(envelope);
  });

  test('reviving a handle needs its store in this process', async ({ store }) => {
    const owned = await store.ownedProxy('x');
    const ref = { ...toRef(owned), store: 'no-such-store' };
    expect(() => fromRef(ref)).toThrow(ProxyStoreFactoryError);
    await drop(fromRef<string>({ ...ref, store: store.name }) as OwnedProxy<string>);
  });

  test('a revived borrow whose lease already ended becomes invalid', async ({ store }) => {
    const owned = await store.ownedProxy('x');
    const shared = await borrow(owned);
    const ref = toRef(shared);
    await release(fromRef<string>(ref) as RefProxy<string>);
    const late = fromRef<string>(ref);
    // The claim is refused; the handle learns it was over.
    await expect.poll(() => isValid(late)).toBe(false);
    await expect(resolve(late)).rejects.toThrow(/lease had ended/);
    await drop(owned);
  });
});

describe('owned objects in lifetimes (docs/lifetimes.md, "Owned objects in lifetimes")', () => {
  test('intoOwned of an object that belongs to a lifetime makes it an owned member: the close ends the owner', async ({ store }) => {
    const lifetime = new ContextLifetime(store);
    const member = await store.proxy({ in: 'lifetime' }, { lifetime });
    const owned = await intoOwned(member);
    const record = store.connector.keys.object('own', getKey(member));
    expect(await store.connector.client.hget(record, 'lt')).toBe(lifetime.id);
    expect(await store.connector.client.zscore(store.connector.keys.lifetime('ends', lifetime.id), getKey(member))).toBe('9999999999999');
    await lifetime.close();
    expect(await store.exists(getKey(member))).toBe(false);
    await expect(borrow(owned)).rejects.toThrow(LifetimeEndedError);
  });

  test('addProxy of a RefProxy or RefMutProxy is InvalidOptionsError before any I/O; of an invalid owner, ReferenceInvalidError', async ({ store }) => {
    await using lifetime = new ContextLifetime(store);
    const owned = await store.ownedProxy({ n: 1 });
    const shared = await borrow(owned);
    const err = await lifetime.addProxy(shared).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionsError);
    expect((err as Error).message).toMatch(/a borrow cannot bind its owner's object to a lifetime; add the OwnedProxy/);
    await release(shared);
    const writer = await mutBorrow(owned);
    await expect(lifetime.addProxy(writer)).rejects.toThrow(InvalidOptionsError);
    await release(writer);
    await drop(owned);
    await expect(lifetime.addProxy(owned)).rejects.toThrow(ReferenceInvalidError);
  });

  test('addKey of an owned key among plain ones adds them all; the close evicts the plain ones and ends the owner', async ({ store }) => {
    const lifetime = await new ContextLifetime(store).waitUntilReady();
    const owned = await store.ownedProxy({ n: 1 });
    const plain = [await store.put('a'), await store.put('b')];
    await lifetime.addKey(plain[0] as string, getKey(owned), plain[1] as string);
    const shared = await borrow(owned);
    await lifetime.close();
    for (const key of plain) expect(await store.exists(key)).toBe(false);
    // Borrowed at the close: kept until its last borrow ends.
    expect(await store.exists(getKey(owned))).toBe(true);
    await expect(drop(owned)).rejects.toThrow(LifetimeEndedError);
    await release(shared);
    expect(await store.exists(getKey(owned))).toBe(false);
  });
});

