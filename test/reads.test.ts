/**
 * `reads: n`: an object that allows at most n consuming resolves (single and
 * cluster projects). The budget is a counter in the object's rules record,
 * spent by the consume script; the last read deletes the object and leaves a
 * tombstone that says "read n of n times, last by pid …". `evict: true` is
 * `reads: 1`, with refs and Redis state as before. Racing consumers (50
 * child processes) never get more than n values between them.
 */
import {
  InvalidOptionsError,
  InvalidRefError,
  ProxyResolveMissingKeyError,
  fromRef,
  getKey,
  resolve,
  toRef,
  type ProxyRef,
  type Store,
} from '../src/index.js';
import { randomId } from '../src/keys.js';
import { childEnv, spawnChild, type ChildHandle } from './harness/child.js';
import { describe, expect, namespaceKeys, targetEnv, test, type RedisTarget } from './harness/store-fixture.js';

type Result = { ok: true; value: unknown } | { ok: false; name: string; message: string };

/** A consuming resolve as another process would do it: a fresh proxy from the ref. */
function consumeOnce<T>(ref: ProxyRef): Promise<T> {
  return resolve(fromRef<T>(ref));
}

/** Every Redis key the object of `key` has (data, rules, tombstone, grace copies), by kind. */
async function objectKinds(store: Store, redis: Parameters<typeof namespaceKeys>[0], key: string): Promise<string[]> {
  const data = store.connector.dataKey(key);
  const name = data.slice(data.indexOf('}:d:') + 4);
  const mine = (await namespaceKeys(redis, store.namespace)).filter((k) => k.includes(`:${name}`));
  return mine.map((k) => k.slice(k.indexOf('}:') + 2).split(':')[0] as string).sort();
}

describe('reads: n', () => {
  test('allows n consuming resolves; the n-th deletes the object and the next is told it was read n of n times', async ({ store, redis }) => {
    const p = await store.proxy({ job: 7 }, { reads: 3 });
    const ref = toRef(p);
    expect(ref).toMatchObject({ evict: true, reads: 3 });
    const rules = store.connector.keys.object('rules', ref.key);
    expect(await redis.hgetall(rules)).toEqual({ reads: '3', of: '3' });

    expect(await consumeOnce(ref)).toEqual({ job: 7 });
    expect(await redis.hget(rules, 'reads')).toBe('2');
    expect(await consumeOnce(ref)).toEqual({ job: 7 });
    expect(await store.exists(ref.key)).toBe(true);
    expect(await consumeOnce(ref)).toEqual({ job: 7 });
    // The last read took the object and its rules record.
    expect(await store.exists(ref.key)).toBe(false);
    expect(await redis.exists(rules)).toBe(0);

    const err = await consumeOnce(ref).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyResolveMissingKeyError);
    expect((err as Error).message).toMatch(
      new RegExp(`key ${ref.key} of store \\S+ was read 3 of 3 times, last by pid ${process.pid} on \\S+ \\d+\\.\\d s ago at .*reads\\.test\\.ts:\\d+`),
    );
    expect((err as Error).message).toContain('its budget of consuming reads is spent');
    expect((err as ProxyResolveMissingKeyError).consumedBy).toMatchObject({ pid: process.pid, reads: 3 });
  });

  test('evict: true is reads: 1: the same ref and the same Redis state as before (no rules record)', async ({ store, redis }) => {
    const evicted = await store.proxy('once', { evict: true });
    const one = await store.proxy('once', { reads: 1 });
    for (const p of [evicted, one]) {
      const ref = toRef(p);
      expect(ref.evict).toBe(true);
      expect(ref).not.toHaveProperty('reads');
      expect(await objectKinds(store, redis, ref.key)).toEqual(['d']);
      expect(String(await consumeOnce(ref))).toBe('once');
      const err = await consumeOnce(ref).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/was consumed by pid \d+ .*\(an ephemeral proxy resolves once\)/);
      expect((err as ProxyResolveMissingKeyError).consumedBy?.reads).toBeUndefined();
    }
  });

  test('store.get, exists and a plain proxy of the key never spend the budget', async ({ store, redis }) => {
    const key = await store.put([1, 2, 3], { reads: 2 });
    for (let i = 0; i < 5; i++) {
      expect(await store.get(key)).toEqual([1, 2, 3]);
      expect(await store.exists(key)).toBe(true);
      expect(await resolve(await store.proxyFromKey<number[]>(key))).toEqual([1, 2, 3]);
    }
    expect(await redis.hget(store.connector.keys.object('rules', key), 'reads')).toBe('2');
    // A consuming proxy of the key spends it.
    for (let i = 0; i < 2; i++) expect(await resolve(await store.proxyFromKey<number[]>(key, { evict: true }))).toEqual([1, 2, 3]);
    expect(await store.exists(key)).toBe(false);
  });

  test('putBatch, proxyBatch and lockedProxy give each object its own budget', async ({ store }) => {
    const keys = await store.putBatch(['a', 'b', 'c'], { reads: 2 });
    const proxies = await store.proxyBatch(['d', 'e'], { reads: 2 });
    const locked = (await store.lockedProxy({ f: 1 }, { reads: 2 })).unlock();
    const fromKeys = await Promise.all(keys.map((key) => store.proxyFromKey(key, { evict: true })));
    const refs = [...fromKeys, ...proxies, locked].map((p) => toRef(p));
    for (const ref of refs) {
      await consumeOnce(ref);
      expect(await store.exists(ref.key)).toBe(true);
      await consumeOnce(ref);
      expect(await store.exists(ref.key)).toBe(false);
    }
  });

  test('a resent consume (same token) never spends the budget twice and gets the same value; the last read waits in its grace copy', async ({
    store,
    redis,
  }) => {
    const key = await store.put({ n: 1 }, { reads: 2 });
    const c = store.connector;
    const rules = c.keys.object('rules', key);
    const [a, b, other] = [randomId(), randomId(), randomId()];
    const run = (token: string) => c.scripts.run('consume', c.consumeKeys(key, token), { token, consumer: '{"pid":1}', ttlMs: 60_000, graceMs: 10_000 });
    const first = await run(a);
    expect(first.consumed).toBe(true);
    // The same call again, as ioredis resends it after a lost reply: an earlier read reads again.
    const resent = await run(a);
    expect(resent).toEqual(first);
    expect(await redis.hmget(rules, 'reads', 'of', `t:${a}`)).toEqual(['1', '2', '1']);
    // The last read, and its resend, which finds the bytes in the grace copy of its token.
    // (It took the object: its reply says so, and the caller then releases the grace copy.)
    const last = await run(b);
    expect(last).toEqual({ ...first, took: true });
    expect(await redis.exists(c.dataKey(key), rules)).toBe(0);
    expect(await run(b)).toEqual({ ...first, took: true });
    const third = await run(other);
    expect(third.consumed).toBe(false);
    expect(third.consumed === false && third.tombstone?.toString()).toMatch(new RegExp(`^\\d+ ${b} 2 \\{"pid":1\\}$`));
  });

  test('with a ttl, the rules record expires with the data, and an unread object goes at its end', async ({ store, redis }) => {
    const p = await store.proxy('short', { reads: 5, ttl: 0.4 });
    const key = getKey(p);
    const rules = store.connector.keys.object('rules', key);
    const [dataAt, rulesAt] = await Promise.all([redis.pexpiretime(store.connector.dataKey(key)), redis.pexpiretime(rules)]);
    expect(dataAt).toBeGreaterThan(0);
    expect(rulesAt).toBe(dataAt);
    await consumeOnce(toRef(p));
    expect(await redis.pexpiretime(rules)).toBe(dataAt);
    await expect.poll(() => redis.exists(store.connector.dataKey(key), rules), { timeout: 10_000, interval: 50 }).toBe(0);
    await expect(consumeOnce(toRef(p))).rejects.toThrow(/is missing from store .*evicted, expired, or never stored/);
  });

  test('store.evict deletes the rules record with the object', async ({ store, redis }) => {
    const key = await store.put('x', { reads: 4 });
    await store.evict(key);
    expect(await objectKinds(store, redis, key)).toEqual([]);
  });

  test('reads must be a positive integer, and evict: false contradicts it', async ({ store }) => {
    for (const reads of [0, -1, 1.5, Number.NaN, 1e10, '3' as unknown as number]) {
      await expect(store.proxy('v', { reads })).rejects.toThrow(/store\.proxy: reads must be an integer from 1 to 1,000,000,000/);
      await expect(store.put('v', { reads })).rejects.toThrow(InvalidOptionsError);
    }
    await expect(store.proxy('v', { reads: 2, evict: false })).rejects.toThrow(/reads makes the proxy consuming, so evict: false contradicts it/);
    // evict: true with reads: the budget says how many.
    const p = await store.proxy('v', { reads: 2, evict: true });
    expect(toRef(p)).toMatchObject({ evict: true, reads: 2 });
    await consumeOnce(toRef(p));
    await consumeOnce(toRef(p));
    // A ref whose budget is malformed is refused.
    expect(() => fromRef({ ...toRef(p), reads: 0 })).toThrow(InvalidRefError);
    expect(() => fromRef({ ...toRef(p), evict: false })).toThrow(/`reads` comes with `evict: true`/);
  });
});

describe('racing consumers in other processes', () => {
  async function resolvers(ctx: { redisUrl: string; target: RedisTarget; namespace: string; storeName: string }, n: number): Promise<ChildHandle[]> {
    const env = { ...childEnv(ctx), ...targetEnv(ctx.target), STORE_NAME: ctx.storeName };
    const children = Array.from({ length: n }, () => spawnChild('test/children/resolver.ts', { env }));
    await Promise.all(children.map((c) => c.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 150_000)));
    return children;
  }

  test('50 processes racing for an object with reads: 5: exactly 5 values, 45 ProxyResolveMissingKeyError', { timeout: 240_000 }, async ({
    store,
    redisUrl,
    target,
    namespace,
  }) => {
    const p = await store.proxy({ prize: 'the value' }, { reads: 5 });
    const ref = toRef(p);
    const children = await resolvers({ redisUrl, target, namespace, storeName: store.name }, 50);
    for (const child of children) await child.send({ refs: [ref], via: 'json', waitForGo: true });
    await Promise.all(children.map((c) => c.send({ go: true })));
    const perChild = await Promise.all(children.map((c) => c.waitForMessage<{ results: Result[] }>((m) => 'results' in (m as object), 60_000)));
    await Promise.all(children.map((c) => c.exited));
    const results = perChild.flatMap((r) => r.results);
    expect(results).toHaveLength(50);
    const winners = results.filter((r) => r.ok);
    expect(winners).toEqual(Array.from({ length: 5 }, () => ({ ok: true, value: { prize: 'the value' } })));
    const losers = results.filter((r): r is Extract<Result, { ok: false }> => !r.ok);
    expect(losers).toHaveLength(45);
    const lastReader = new Set(children.filter((_, i) => perChild[i]?.results[0]?.ok).map((c) => c.pid));
    for (const loser of losers) {
      expect(loser.name).toBe('ProxyResolveMissingKeyError');
      const pid = Number(/read 5 of 5 times, last by pid (\d+)/.exec(loser.message)?.[1]);
      expect(lastReader.has(pid)).toBe(true);
    }
    expect(await store.exists(ref.key)).toBe(false);
  });
});
