/**
 * Options from plain JavaScript: an unknown key is an InvalidOptionsError
 * with a "did you mean" hint on every options object of the public API, and
 * number options are checked against their unit and range when the Store,
 * connector or lifetime is made. A misspelled option must never silently
 * change what happens (`{ evcit: true }` made a plain proxy, `{ lifetim: lt }`
 * left a key that outlived the lifetime).
 */
import {
  ContextLifetime,
  InvalidOptionsError,
  LeaseLifetime,
  RedisConnector,
  StaticLifetime,
  Store,
  borrow,
  drop,
  intoOwned,
  mutBorrow,
  registerStore,
  release,
  submit,
  update,
} from '../../src/index.js';
import { childEnv, runChild } from '../harness/child.js';
import { connectionOptions, describe, expect, namespaceKeys, test } from '../harness/store-fixture.js';

/** Expect `run` to throw (or reject) an InvalidOptionsError whose message matches. */
async function refused(run: () => unknown, message: RegExp): Promise<void> {
  let error: unknown;
  try {
    await run();
  } catch (err) {
    error = err;
  }
  expect(error, 'expected an InvalidOptionsError').toBeInstanceOf(InvalidOptionsError);
  expect((error as Error).message).toMatch(message);
}

describe('an unknown option is refused with a hint, everywhere', () => {
  test('the message names the call, the key, the closest option and the list', async ({ store }) => {
    await refused(
      () => store.proxy([1], { evcit: true } as never),
      /^store\.proxy: unknown option `evcit` \(did you mean `evict`\?\); the options are `evict`, `lifetime`, `populateTarget`, `skipNonproxiable`, `serializer`, `deserializer`, `reads`, `ttl`, `dedupe`$/,
    );
    await refused(() => store.put(1, { xyzzy: 1 } as never), /^store\.put: unknown option `xyzzy`; the options are `lifetime`, `serializer`, `reads`, `ttl`, `dedupe`$/);
  });

  test('a misspelled option writes nothing: { evcit: true } and { lifetim }', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    await lifetime.waitUntilReady();
    const before = await namespaceKeys(redis, store.namespace);
    await refused(() => store.proxy({ a: 1 }, { evcit: true } as never), /did you mean `evict`/);
    await refused(() => store.put({ a: 1 }, { lifetim: lifetime } as never), /did you mean `lifetime`/);
    await refused(() => store.putBatch([1, 2], { lifetim: lifetime } as never), /store\.putBatch: .*`lifetime`/);
    expect(await namespaceKeys(redis, store.namespace)).toEqual(before);
    await lifetime.close();
  });

  test('Store, RedisConnector and their configs', async ({ target, namespace, store }) => {
    const where = connectionOptions(target);
    await refused(() => new Store('s', new RedisConnector({ ...where, namespace }), { leaseTTl: 5 } as never), /new Store\("s"\): unknown option `leaseTTl` \(did you mean `leaseTtl`\?\)/);
    await refused(() => new Store('s', new RedisConnector({ ...where, namespace }), { registr: true } as never), /did you mean `register`/);
    await refused(() => new RedisConnector({ ...where, namespace, comandTimeout: 5 } as never), /new RedisConnector: unknown option `comandTimeout` \(did you mean `commandTimeout`\?\)/);
    await refused(() => Store.fromConfig(store.config(), { pasword: 'x' } as never), /Store\.fromConfig: unknown option `pasword` \(did you mean `password`\?\)/);
    await refused(() => RedisConnector.fromConfig(store.connector.config(), { redisOption: {} } as never), /did you mean `redisOptions`/);
    await refused(() => store.close({ closeConector: false } as never), /store\.close: unknown option `closeConector` \(did you mean `closeConnector`\?\)/);
    await refused(() => store.put(1, 'fast' as never), /store\.put: options must be an object, got string/);
    await refused(() => registerStore(store, { existOK: true } as never), /registerStore: unknown option `existOK` \(did you mean `existOk`\?\)/);
  });

  test('get, proxyBatch, proxyFromKey, lockedProxy and ownedProxy', async ({ store }) => {
    const key = await store.put([1]);
    await refused(() => store.get(key, { deserialiser: () => 1 } as never), /store\.get: .*did you mean `deserializer`/);
    await refused(() => store.proxyBatch([[1]], { populateTargets: false } as never), /store\.proxyBatch: .*did you mean `populateTarget`/);
    await refused(() => store.proxyFromKey(key, { evict: true, lifetme: undefined } as never), /store\.proxyFromKey: .*did you mean `lifetime`/);
    await refused(() => store.lockedProxy([1], { evit: true } as never), /store\.lockedProxy: .*did you mean `evict`/);
    await refused(() => store.ownedProxy([1], { skipNonProxiable: true } as never), /store\.ownedProxy: .*did you mean `skipNonproxiable`/);
    await store.evict(key);
  });

  test('lifetimes: constructors, close and addKey', async ({ store }) => {
    await refused(() => new ContextLifetime(store, { nmae: 'x' } as never), /new ContextLifetime: unknown option `nmae` \(did you mean `name`\?\)/);
    await refused(() => new LeaseLifetime(store, { expiry: 5, expirty: 10 } as never), /new LeaseLifetime: unknown option `expirty` \(did you mean `expiry`\?\)/);
    const lifetime = new ContextLifetime(store);
    const key = await store.put('x');
    await refused(() => lifetime.addKey(key, { stroe: store } as never), /addKey: unknown option `stroe` \(did you mean `store`\?\)/);
    await refused(() => lifetime.close({ closeStore: true } as never), /lifetime\.close: .*did you mean `closeStores`/);
    await refused(() => StaticLifetime.instance().close({ closestores: true } as never), /StaticLifetime\.close: .*did you mean `closeStores`/);
    await lifetime.close();
    await store.evict(key);
  });

  test('ownership: borrow, mutBorrow, intoOwned, update and submit', async ({ store }) => {
    const owned = await store.ownedProxy([1, 2]);
    await refused(() => borrow(owned, { populate: false } as never), /^borrow: unknown option `populate`/);
    await refused(() => mutBorrow(owned, { populateTaget: false } as never), /^mutBorrow: .*did you mean `populateTarget`/);
    await refused(() => update(owned, { serialiser: () => Buffer.alloc(0) } as never), /^update: .*did you mean `serializer`/);
    await refused(() => submit(() => 1, { arg: [] } as never), /^submit: unknown option `arg` \(did you mean `args`\?\)/);
    const plain = await store.proxy([3]);
    await refused(() => intoOwned(plain, { populateTargt: true } as never), /^intoOwned: .*did you mean `populateTarget`/);
    const shared = await borrow(owned);
    await release(shared);
    await drop(owned);
    await store.evict((await import('../../src/index.js')).getKey(plain));
  });
});

describe('number options: unit and range, checked when the object is made', () => {
  test('leaseTtl is seconds from 0.01 to 30 days: 1e17 never reaches Lua', ({ target, namespace }) => {
    const connector = () => new RedisConnector({ ...connectionOptions(target), namespace });
    for (const bad of [1e17, 0, -1, Number.NaN, Infinity, '30', 0.001]) {
      expect(() => new Store('s', connector(), { leaseTtl: bad as number })).toThrow(
        /^leaseTtl must be a number of seconds from 0\.01 to 2,592,000, got /,
      );
    }
    expect(new Store('s', connector(), { leaseTtl: 0.5 }).leaseTtl).toBe(0.5);
  });

  test('tombstoneTtl is seconds, at least 1 ms: 0.0004 is refused instead of breaking every ephemeral resolve', ({ target, namespace }) => {
    const connector = () => new RedisConnector({ ...connectionOptions(target), namespace });
    expect(() => new Store('s', connector(), { tombstoneTtl: 0.0004 })).toThrow(/^tombstoneTtl must be a number of seconds from 0\.001 to 5,000,000,000, got 0\.0004$/);
    expect(() => new Store('s', connector(), { tombstoneTtl: 1e12 })).toThrow(InvalidOptionsError);
    expect(new Store('s', connector(), { tombstoneTtl: 0.001 }).tombstoneTtl).toBe(0.001);
  });

  test('cacheSize is a whole number from 0 to 2^24', ({ target, namespace }) => {
    const connector = () => new RedisConnector({ ...connectionOptions(target), namespace });
    for (const bad of [-1, 1.5, 2 ** 25]) {
      expect(() => new Store('s', connector(), { cacheSize: bad })).toThrow(/^cacheSize must be an integer from 0 to 16,777,216/);
    }
  });

  test('commandTimeoutMs is whole milliseconds up to Node\'s longest timer; commandTimeout is its old name', ({ target, namespace }) => {
    const where = { ...connectionOptions(target), namespace };
    for (const bad of [0, 1.5, 2 ** 31, -5]) {
      expect(() => new RedisConnector({ ...where, commandTimeoutMs: bad })).toThrow(/^commandTimeoutMs must be an integer of milliseconds from 1 to 2,147,483,647/);
    }
    expect(() => new RedisConnector({ ...where, commandTimeout: 0 })).toThrow(/^commandTimeout must be an integer of milliseconds/);
    expect(() => new RedisConnector({ ...where, commandTimeout: 5, commandTimeoutMs: 5 })).toThrow(/not both/);
    expect(new RedisConnector({ ...where, commandTimeout: 1234 }).config().commandTimeoutMs).toBe(1234);
  });

  test('LeaseLifetime expiry and extend: seconds or a Date that Redis can hold', async ({ store }) => {
    await refused(() => new LeaseLifetime(store, { expiry: 1e15 }), /LeaseLifetime expiry \(seconds\) must be a number of seconds from -5,000,000,000 to 5,000,000,000, got 1000000000000000/);
    await refused(() => new LeaseLifetime(store, { expiry: new Date(Date.UTC(9999, 0)) }), /LeaseLifetime expiry must be a Date from 1970 to 2286-/);
    await refused(() => new LeaseLifetime(store, { expiry: new Date(Number.NaN) }), /invalid Date/);
    await refused(() => new LeaseLifetime(store, { expiry: '10' as never }), /must be a number of seconds or a Date/);
    const lease = new LeaseLifetime(store, { expiry: 60 });
    await refused(() => lease.extend(1e12), /extend \(seconds\) must be a number of seconds from/);
    await refused(() => lease.extend(Infinity), /extend must be a number of seconds or a Date/);
    await lease.extend(1);
    await lease.close();
  });

  test('boolean and function options are checked too', ({ target, namespace }) => {
    const connector = () => new RedisConnector({ ...connectionOptions(target), namespace });
    expect(() => new Store('s', connector(), { register: 'yes' as never })).toThrow(/^register must be a boolean, got string/);
    expect(() => new Store('s', connector(), { serializer: 'json' as never })).toThrow(/^serializer must be a function, got string/);
  });
});

describe('a constructor that throws leaves nothing open', () => {
  test('bad options, a duplicate name and a bad config: the process still exits by itself', async ({ redisUrl, namespace, target }) => {
    if (target.kind !== 'single') return; // the child talks to the run's single Redis
    const out = await runChild('test/children/failed-constructors.ts', { env: childEnv({ redisUrl, namespace }), timeoutMs: 15_000 });
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout.trim())).toEqual([
      'InvalidOptionsError',
      'InvalidOptionsError',
      'StoreExistsError',
      'InvalidOptionsError',
      'StoreExistsError',
    ]);
  });
});
