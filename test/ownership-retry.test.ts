/**
 * A rule-changing call whose reply is lost is resent by ioredis (same
 * arguments, same random token): it must not be applied twice. And under
 * connections killed mid-operation, the borrow counts in Redis stay exact.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import { ProxyStoreError, RedisConnector, Store, borrow, drop, getKey, mutBorrow, release, type OwnedProxy } from '../src/index.js';
import { randomId } from '../src/keys.js';
import { objectKeys } from '../src/ownership/handle.js';
import { renewalOf } from '../src/ownership/renewal.js';
import { proxyState } from '../src/proxy/proxy.js';
import { afterAll, beforeAll, describe, expect, test } from './harness/ownership.js';

/** The keys and arguments of one borrow script call by the owner of `owned`, with a fresh token. */
function borrowCall(store: Store, owned: OwnedProxy<unknown>) {
  const keys = objectKeys(store, getKey(owned));
  const args = {
    key: getKey(owned),
    owner: proxyState(owned)!.token as string,
    token: randomId(),
    holder: renewalOf(store).holder,
    ttlMs: 30_000,
  };
  return { keys, args };
}

describe('resent borrows', () => {
  test('a borrow sent twice with one token is one shared borrow', async ({ store, redis }) => {
    const owned = await store.ownedProxy({ n: 1 });
    const { keys, args } = borrowCall(store, owned);
    expect(await store.connector.scripts.run('borrow', keys, args)).toBe(1); // its grant number: the first
    expect(await store.connector.scripts.run('borrow', keys, args)).toBe(1); // the resend: the same grant
    expect(await redis.zcard(keys.leases)).toBe(2); // the owner and one borrow
    await store.connector.scripts.run('release', keys, { key: args.key, token: args.token, call: randomId(), grant: 1 });
    await drop(owned);
  });

  test('a mutable borrow sent twice with one token succeeds both times and stays one borrow', async ({ store, redis }) => {
    const owned = await store.ownedProxy({ n: 1 });
    const { keys, args } = borrowCall(store, owned);
    expect(await store.connector.scripts.run('mutBorrow', keys, args)).toBe(1); // its grant number: the first
    expect(await store.connector.scripts.run('mutBorrow', keys, args)).toBe(1); // the resend: the same grant
    expect(await redis.zcard(keys.leases)).toBe(2);
    expect(await redis.hget(keys.record, 'mut')).toBe(args.token);
    // Another token is still refused.
    await expect(store.connector.scripts.run('mutBorrow', keys, { ...args, token: randomId() })).rejects.toThrow(/already mutably borrowed/);
    await store.connector.scripts.run('release', keys, { key: args.key, token: args.token, call: randomId(), grant: 1 });
    await drop(owned);
  });
});

describe('borrows under CLIENT KILL', () => {
  let server: LocalRedis;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url);
    admin.on('error', () => undefined);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  test('the counts in Redis stay exact: after every cycle ends, only the owner holds a lease', async ({ namespace }) => {
    const store = new Store(`kill-${namespace}`, new RedisConnector({ url: server.url, namespace }), { register: true });
    const owned: OwnedProxy<{ n: number }> = await store.ownedProxy({ n: 1 });
    const keys = objectKeys(store, getKey(owned));
    let kills = 0;
    const killer = (async () => {
      for (let i = 0; i < 300 && kills < 20; i++) {
        const id = await (store.connector.client as Redis).client('ID').catch(() => undefined);
        if (id !== undefined && Number(await admin.client('KILL', 'ID', String(id)).catch(() => 0)) > 0) kills++;
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    const failures: unknown[] = [];
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        try {
          const b = i % 10 === 0 ? await mutBorrow(owned).catch(() => borrow(owned)) : await borrow(owned);
          await release(b);
        } catch (err) {
          failures.push(err);
        }
      }),
    );
    await killer;
    expect(kills).toBeGreaterThan(0);
    for (const err of failures) expect(err).toBeInstanceOf(ProxyStoreError);
    // No borrow was counted twice and none was left behind by a resend.
    expect(await admin.zcard(keys.leases)).toBe(1);
    expect(await admin.hget(keys.record, 'mut')).toBe('');
    await drop(owned);
    await store.close();
    expect((await admin.keys(`${namespace}:{*`)).filter((k) => !/\}:done:/.test(k))).toEqual([]);
  });
});
