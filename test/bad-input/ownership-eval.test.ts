/**
 * The ownership scripts called by hand (raw EVAL, as a buggy or hostile
 * client could): an empty token matches nothing, so it cannot act as the
 * missing owner of an orphaned object; and KEYS must be the keys of one
 * object. Every refusal is a coded error that changes nothing.
 */
import { LUA_SCRIPTS } from '../../src/generated/lua.js';
import { borrow, getKey, release, type OwnedProxy, type Store } from '../../src/index.js';
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
      evalScript(redis, 'update', [keys.data, keys.record, keys.leases, keys.done], [key, '', 'updateCallToken0000000', '1', 'overwritten']),
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
      evalScript(redis, 'release', [ka.data, ka.record, kb.leases, ka.done], [getKey(a), proxyState(shared)!.token!, 'releaseCallToken000000']),
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
