/**
 * The ownership scripts called by hand (raw EVAL, as a buggy or hostile
 * client could): an empty token matches nothing, so it cannot act as the
 * missing owner of an orphaned object; and KEYS must be the keys of one
 * object; lifetimeAddKeys takes each object's ownership and rules records
 * and leases beside its data key, and refuses an owned one bound to another
 * lifetime. Every refusal is a coded error that changes nothing.
 */
import { LUA_SCRIPTS } from '../../src/generated/lua.js';
import { ContextLifetime, borrow, getKey, release, type OwnedProxy, type Store } from '../../src/index.js';
import { objectKeys } from '../../src/ownership/handle.js';
import { proxyState } from '../../src/proxy/proxy.js';
import { describe, expect, test } from '../harness/ownership.js';
import type { Redis, Cluster } from 'ioredis';

type ScriptName = keyof typeof LUA_SCRIPTS;

async function evalScript(redis: Redis | Cluster, name: ScriptName, keys: string[], args: string[]): Promise<unknown> {
  return redis.eval(LUA_SCRIPTS[name].source, keys.length, ...keys, ...args);
}

/** The object's three keys, dumped: to show that a refused call changed nothing. */
async function dumpObject(redis: Redis | Cluster, store: Store, key: string): Promise<unknown[]> {
  const k = objectKeys(store, key);
  return Promise.all([redis.get(k.data), redis.hgetall(k.record), redis.zrange(k.leases, 0, -1, 'WITHSCORES')]);
}

/** An owned object whose owner was abandoned while a shared borrow lives: owner '' (the orphan marker). */
async function orphanWithBorrow(store: Store) {
  const owned: OwnedProxy<string> = await store.ownedProxy('kept while borrowed');
  const shared = await borrow(owned);
  const key = getKey(owned);
  const keys = objectKeys(store, key);
  expect(await store.connector.scripts.run('abandon', keys, { owner: proxyState(owned)!.token!, call: 'orphanSetupCall0000000' })).toBe(2);
  return { key, keys, shared };
}

describe('the empty token matches no orphan marker', () => {
  test('borrow with an empty owner token is refused on an orphan', async ({ store, redis }) => {
    const { key, keys, shared } = await orphanWithBorrow(store);
    expect(await redis.hget(keys.record, 'owner')).toBe('');
    const before = await dumpObject(redis, store, key);
    await expect(
      evalScript(redis, 'borrow', [keys.data, keys.record, keys.leases], [key, '', 'newBorrowToken00000000', 'someHolder000000000000', '30000']),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS borrow: owner must be a token/);
    expect(await dumpObject(redis, store, key)).toEqual(before);
    await release(shared);
  });

  test('update with an empty token cannot write an orphan', async ({ store, redis }) => {
    const { key, keys, shared } = await orphanWithBorrow(store);
    const before = await dumpObject(redis, store, key);
    await expect(
      evalScript(redis, 'update', [keys.data, keys.record, keys.leases, keys.done, keys.data], [key, '', 'updateCallToken0000000', '1', 'overwritten', '0']),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS update: token must be a token/);
    expect(await dumpObject(redis, store, key)).toEqual(before);
    await release(shared);
  });

  test('drop with an empty owner token cannot evict an object while a shared borrow lives', async ({ store, redis }) => {
    const { key, keys, shared } = await orphanWithBorrow(store);
    const before = await dumpObject(redis, store, key);
    await expect(
      evalScript(redis, 'drop', [keys.data, keys.record, keys.leases, keys.done], [key, '', 'dropCallToken000000000']),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS drop: owner must be a token/);
    expect(await dumpObject(redis, store, key)).toEqual(before);
    expect(await store.exists(key)).toBe(true);
    await release(shared);
    expect(await store.exists(key)).toBe(false);
  });
});

describe('KEYS of one object only', () => {
  test('borrow with the record and leases of another object is refused, and changes neither', async ({ store, redis }) => {
    const a: OwnedProxy<string> = await store.ownedProxy('a');
    const b: OwnedProxy<string> = await store.ownedProxy('b');
    const ka = objectKeys(store, getKey(a));
    const kb = objectKeys(store, getKey(b));
    const before = [await dumpObject(redis, store, getKey(a)), await dumpObject(redis, store, getKey(b))];
    await expect(
      evalScript(redis, 'borrow', [ka.data, kb.record, kb.leases], [getKey(a), proxyState(b)!.token!, 'newBorrowToken00000000', 'someHolder000000000000', '30000']),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS borrow: KEYS must be the keys of one object/);
    // The key named in ARGV must be the data key's, too.
    await expect(
      evalScript(redis, 'borrow', [ka.data, ka.record, ka.leases], [getKey(b), proxyState(a)!.token!, 'newBorrowToken00000000', 'someHolder000000000000', '30000']),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS borrow: key must be the store key of KEYS\[1\]/);
    expect([await dumpObject(redis, store, getKey(a)), await dumpObject(redis, store, getKey(b))]).toEqual(before);
  });

  test('release, drop and clone refuse keys of two objects', async ({ store, redis }) => {
    const a: OwnedProxy<string> = await store.ownedProxy('a');
    const b: OwnedProxy<string> = await store.ownedProxy('b');
    const shared = await borrow(a);
    const ka = objectKeys(store, getKey(a));
    const kb = objectKeys(store, getKey(b));
    const before = [await dumpObject(redis, store, getKey(a)), await dumpObject(redis, store, getKey(b))];
    await expect(
      evalScript(redis, 'release', [ka.data, ka.record, kb.leases, ka.done], [getKey(a), proxyState(shared)!.token!, 'releaseCallToken000000', '0']),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS release: KEYS must be the keys of one object/);
    await expect(
      evalScript(redis, 'drop', [kb.data, kb.record, kb.leases, ka.done], [getKey(b), proxyState(b)!.token!, 'dropCallToken000000000']),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS drop: KEYS must be the keys of one object/);
    // A clone must go under the source's hash tag (COPY needs one slot), as a whole other object.
    await expect(
      evalScript(redis, 'clone', [ka.data, ka.record, ka.leases, kb.data, kb.record, kb.leases], [
        getKey(a),
        proxyState(a)!.token!,
        'cloneOwnerToken0000000',
        'someHolder000000000000',
        '30000',
      ]),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS clone: the clone's keys must be another object under the source's hash tag/);
    expect([await dumpObject(redis, store, getKey(a)), await dumpObject(redis, store, getKey(b))]).toEqual(before);
    await release(shared);
  });
});

describe('lifetimeAddKeys checks each object with its ownership record', () => {
  /** An open ContextLifetime, two plain objects and one object of its own hash tag that has an ownership record. */
  async function setup(store: Store, redis: Redis | Cluster) {
    const lifetime = await new ContextLifetime(store).waitUntilReady();
    const plain = [await store.put('a'), await store.put('b')];
    // An object inside the lifetime's hash tag (an own member, were it added) with an
    // ownership record: the API never makes one, a hand or a bug could.
    const inside = `${lifetime.id}~owned`;
    const k = objectKeys(store, inside);
    await redis.set(k.data, 'owned', 'PX', 60_000);
    // Bound to another lifetime already: an owned object belongs to one lifetime at a time.
    await redis.hset(k.record, 'owner', 'ownerToken000000000000', 'lt', 'anotherLifetime');
    await redis.pexpire(k.record, 60_000);
    const meta = store.connector.keys.lifetime('lt', lifetime.id);
    const keys = [
      meta,
      store.connector.keys.lifetime('members', lifetime.id),
      store.connector.keys.lifetime('foreign', lifetime.id),
      store.connector.keys.lifetime('ends', lifetime.id),
    ];
    const pair = (key: string) => [
      objectKeys(store, key).data,
      objectKeys(store, key).record,
      store.connector.keys.object('rules', key),
      objectKeys(store, key).leases,
    ];
    const state = () => Promise.all([redis.hgetall(meta), redis.exists(keys[1] as string, keys[2] as string), ...plain.map((p) => redis.pttl(objectKeys(store, p).data))]);
    const cleanup = async () => {
      await lifetime.close();
      for (const key of plain) await store.evict(key);
      await redis.del(k.data, k.record);
    };
    return { lifetime, plain, inside, keys, pair, state, cleanup };
  }

  test('an owned object bound to another lifetime is PSR_ALREADY_OWNED, and nothing is added', async ({ store, redis }) => {
    const { lifetime, plain, inside, keys, pair, state, cleanup } = await setup(store, redis);
    const before = await state();
    await expect(
      evalScript(redis, 'lifetimeAddKeys', [...keys, ...pair(plain[0] as string), ...pair(inside), ...pair(plain[1] as string)], []),
    ).rejects.toThrow(new RegExp(`^PSR_ALREADY_OWNED lifetime ${lifetime.id}: key ${inside} is owned and bound to lifetime anotherLifetime already`));
    expect(await state()).toEqual(before);
    await cleanup();
  });

  test('objects that are not quadruples of a data key and its own ownership record, rules record and leases are refused, and nothing is added', async ({ store, redis }) => {
    const { plain, keys, pair, state, cleanup } = await setup(store, redis);
    const [a, b] = plain as [string, string];
    const before = await state();
    const rules = (key: string) => store.connector.keys.object('rules', key);
    // Another object's record beside a data key: its owner check would look at the wrong object.
    const leases = (key: string) => objectKeys(store, key).leases;
    await expect(
      evalScript(redis, 'lifetimeAddKeys', [...keys, objectKeys(store, a).data, objectKeys(store, b).record, rules(a), leases(a)], []),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS lifetimeAddKeys: .* is not the ownership record of /);
    // Another object's rules record: its expiry would go to the wrong object.
    await expect(
      evalScript(redis, 'lifetimeAddKeys', [...keys, objectKeys(store, a).data, objectKeys(store, a).record, rules(b), leases(a)], []),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS lifetimeAddKeys: .* is not the rules record of /);
    // Another object's leases: the owned object's bound would settle the wrong keys.
    await expect(
      evalScript(redis, 'lifetimeAddKeys', [...keys, objectKeys(store, a).data, objectKeys(store, a).record, rules(a), leases(b)], []),
    ).rejects.toThrow(/^PSR_INVALID_OPTIONS lifetimeAddKeys: .* is not the leases of /);
    // A data key without its records.
    await expect(evalScript(redis, 'lifetimeAddKeys', [...keys, ...pair(a), objectKeys(store, b).data], [])).rejects.toThrow(
      /^PSR_INVALID_OPTIONS lifetimeAddKeys: objects must be quadruples of a data key, its ownership record, its rules record and its leases, got 5 keys/,
    );
    expect(await state()).toEqual(before);
    await cleanup();
  });
});
