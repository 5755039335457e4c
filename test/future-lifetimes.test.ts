/**
 * Futures composed with lifetimes (DESIGN.md §7.1 and §7.2): a future made
 * under a lifetime is its member from the start; a lifetime that ends before
 * the set wakes the waiters with LifetimeEndedError, in any process. Runs on
 * both targets.
 */
import { Cluster, type Redis } from 'ioredis';
import {
  ContextLifetime,
  Future,
  LeaseLifetime,
  FutureTimeoutError,
  LifetimeEndedError,
  StaticLifetime,
  resolve,
  toRef,
} from '../src/index.js';
import { BLOCKING_CONNECTION_NAME } from '../src/future/pool.js';
import { childEnv, spawnChild } from './harness/child.js';
import { describe, expect, targetEnv, test } from './harness/store-fixture.js';

async function blockedWaits(redis: Redis): Promise<number> {
  const nodes = redis instanceof Cluster ? (redis as Cluster).nodes('master') : [redis];
  let n = 0;
  for (const node of nodes) {
    const list = (await node.client('LIST')) as string;
    for (const line of list.split('\n')) if (line.includes(`name=${BLOCKING_CONNECTION_NAME} `) && / flags=\S*b/.test(line)) n++;
  }
  return n;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('futures under lifetimes', () => {
  test('a lifetime closed before the set wakes its waiters with LifetimeEndedError; a later set fails too', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const future = await store.future<number>({ lifetime });
    expect(future.key.startsWith(`${lifetime.id}~`)).toBe(true);
    const waiting = future.result().catch((e: unknown) => e);
    const viaProxy = resolve(future.proxy()).catch((e: unknown) => e);
    await until(async () => (await blockedWaits(redis)) >= 1, 'the wait to block');
    await lifetime.close();
    for (const err of [await waiting, await viaProxy]) {
      expect(err).toBeInstanceOf(LifetimeEndedError);
      expect((err as Error).message).toContain(future.key);
    }
    // A wait that starts after the close ends at once, and so does a set.
    await expect(future.result()).rejects.toBeInstanceOf(LifetimeEndedError);
    await expect(Future.fromRef(toRef(future)).setResult(1)).rejects.toBeInstanceOf(LifetimeEndedError);
    expect(await redis.exists(store.connector.keys.lifetime('futures', lifetime.id))).toBe(0);
  });

  test('a result set under a lifetime is its member: the close evicts it', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const future = await store.future<string>({ lifetime });
    await future.setResult('v');
    expect(await redis.sismember(store.connector.keys.lifetime('members', lifetime.id), future.key)).toBe(1);
    expect(await future.result()).toBe('v');
    await lifetime.close();
    expect(await redis.exists(store.connector.dataKey(future.key), store.connector.keys.object('sig', future.key))).toBe(0);
    // Value and signal are gone: as for ProxyStore, an evicted result looks unset to a new wait.
    await expect(Future.fromRef(toRef(future)).result({ timeout: 0.2 })).rejects.toBeInstanceOf(FutureTimeoutError);
  });

  test('a closed lifetime refuses new futures', async ({ store }) => {
    const lifetime = new ContextLifetime(store);
    await lifetime.close();
    await expect(store.future({ lifetime })).rejects.toBeInstanceOf(LifetimeEndedError);
  });

  test('under a lease: the unset future and its result carry the lease, and an extend moves them', async ({ store, redis }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 30 });
    const future = await store.future<string>({ lifetime, ttl: 600 });
    const futures = store.connector.keys.lifetime('futures', lifetime.id);
    const before = await redis.pexpiretime(futures);
    expect(before).toBeGreaterThan(0);
    await lifetime.extend(60);
    expect(await redis.pexpiretime(futures)).toBeGreaterThan(before + 20_000);
    await future.setResult('leased');
    // The earlier of the lease (about 90 s) and the result's own ttl (600 s).
    const ttl = await redis.pttl(store.connector.dataKey(future.key));
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(90_000);
    await lifetime.close();
  });

  test('a lease that runs out with nobody closing it wakes the waiters with LifetimeEndedError, not at their timeout', async ({ store }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 1 });
    const future = await store.future<string>({ lifetime });
    const error = await future.result({ timeout: 60 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LifetimeEndedError);
    expect((error as Error).message).toMatch(/belongs to a lifetime that ended before it was set/);
    await expect(future.setResult('too late')).rejects.toBeInstanceOf(LifetimeEndedError);
  });

  test('a lease extended while a waiter blocks: the waiter waits on, and wakes with a result set after the first end', async ({ store }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 1 });
    const future = await store.future<string>({ lifetime });
    const waiting = future.result({ timeout: 60 });
    await lifetime.extend(30);
    await new Promise((r) => setTimeout(r, 1_500)); // past the first end
    await future.setResult('after the first end');
    expect(await waiting).toBe('after the first end');
    await lifetime.close();
  });

  test('evict and a lifetime: the consumed result leaves the lifetime', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const future = await store.future<number>({ lifetime, evict: true });
    const waiting = future.result();
    await future.setResult(9);
    expect(await waiting).toBe(9);
    expect(await redis.sismember(store.connector.keys.lifetime('members', lifetime.id), future.key)).toBe(0);
    await lifetime.close();
  });

  test('a StaticLifetime future is evicted with the store', async ({ store, redis }) => {
    const future = await store.future<number>({ lifetime: StaticLifetime.instance() });
    await future.setResult(1);
    const data = store.connector.dataKey(future.key);
    expect(await redis.pttl(data)).toBeGreaterThan(0);
    await store.close();
    expect(await redis.exists(data)).toBe(0);
  });

  test('a waiter in another process wakes with LifetimeEndedError when the lifetime closes', { timeout: 240_000 }, async ({ store, redis, redisUrl, namespace, target }) => {
    const child = spawnChild('test/children/future-peer.ts', { env: { ...childEnv({ redisUrl, namespace }), ...targetEnv(target), STORE_NAME: store.name } });
    try {
      await child.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 150_000);
      const lifetime = new ContextLifetime(store);
      const future = await store.future<number>({ lifetime });
      await child.send({ await: toRef(future) });
      await until(async () => (await blockedWaits(redis)) >= 1, "the child's wait to block", 60_000);
      await lifetime.close();
      const reply = await child.waitForMessage<{ ok: boolean; name?: string }>((m) => typeof (m as { ok?: unknown }).ok === 'boolean', 60_000);
      expect(reply).toMatchObject({ ok: false, name: 'LifetimeEndedError' });
    } finally {
      child.kill('SIGTERM');
      await child.exited;
    }
  });
});
