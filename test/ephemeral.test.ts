import {
  ProxyResolveMissingKeyError,
  ProxyStoreError,
  fromRef,
  getKey,
  isResolved,
  resolve,
  toRef,
} from '../src/index.js';
import { childEnv, runChild, spawnChild, type ChildHandle } from './harness/child.js';
import { randomId } from '../src/keys.js';
import { waitUntil } from './lifetimes/util.js';
import { describe, expect, targetEnv, test, type RedisTarget } from './harness/store-fixture.js';

type Result = { ok: true; value: unknown } | { ok: false; name: string; message: string };

describe('ephemeral proxies (evict: true)', () => {
  test('the creating process holds a resolved proxy that does not consume the object', async ({ store }) => {
    const p = await store.proxy([1, 2, 3], { evict: true });
    expect(isResolved(p)).toBe(true);
    expect(p).toEqual([1, 2, 3]);
    expect(await store.exists(getKey(p))).toBe(true);
    expect(toRef(p).evict).toBe(true);
    await resolve(fromRef(toRef(p)));
    expect(await store.exists(getKey(p))).toBe(false);
  });

  test('populateTarget: false makes even the local resolve consume it', async ({ store }) => {
    const p = await store.proxy({ a: 1 }, { evict: true, populateTarget: false });
    expect(await resolve(p)).toEqual({ a: 1 });
    expect(await store.exists(getKey(p))).toBe(false);
  });

  test('a second resolve says who consumed the object, where and when', async ({ store, redis }) => {
    const p = await store.proxy('once', { evict: true });
    const ref = toRef(p);
    expect(await resolve(fromRef(ref))).toBe('once');
    const err = await resolve(fromRef(ref)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyResolveMissingKeyError);
    const message = (err as Error).message;
    expect(message).toContain(ref.key);
    expect(message).toMatch(new RegExp(`consumed by pid ${process.pid} on \\S+ \\d+\\.\\d s ago at .*ephemeral\\.test\\.ts:\\d+`));
    // The same, as data: a handler can tell a duplicate delivery from a lost input.
    const by = (err as ProxyResolveMissingKeyError).consumedBy;
    expect(by?.pid).toBe(process.pid);
    expect(by?.frame).toMatch(/ephemeral\.test\.ts:\d+/);
    expect(by?.agoMs).toBeGreaterThanOrEqual(0);
    const back = ProxyStoreError.fromJSON(JSON.parse(JSON.stringify(err)));
    expect((back as ProxyResolveMissingKeyError).consumedBy).toEqual(by);
    // An object that was never consumed, only evicted, has no consumer.
    const plain = await store.proxy([1], { populateTarget: false });
    await store.evict(getKey(plain));
    const missing = await resolve(plain).catch((e: unknown) => e);
    expect((missing as ProxyResolveMissingKeyError).consumedBy).toBeUndefined();
    // The tombstone is short-lived: it carries a TTL.
    const tomb = store.connector.keys.object('tomb', ref.key);
    const ttl = await redis.pttl(tomb);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(store.tombstoneTtl * 1000);
  });

  test('a resend of the same consume after a lost reply gets the value; any other consumer does not', async ({
    store,
    redis,
  }) => {
    const key = await store.put({ once: true });
    const c = store.connector;
    const [tokenA, tokenB] = [randomId(), randomId()];
    const keys = (token: string) => c.consumeKeys(key, token);
    const args = (token: string) => ({ token, consumer: '{"pid":1}', ttlMs: 60_000, graceMs: 10_000 });
    const first = await c.scripts.run('consume', keys(tokenA), args(tokenA));
    expect(first.consumed).toBe(true);
    // The same command again (what ioredis resends when the reply was lost).
    const resent = await c.scripts.run('consume', keys(tokenA), args(tokenA));
    expect(resent.consumed).toBe(true);
    expect(resent.consumed && resent.value.equals(first.consumed ? first.value : Buffer.alloc(0))).toBe(true);
    const other = await c.scripts.run('consume', keys(tokenB), args(tokenB));
    expect(other.consumed).toBe(false);
    // The grace copy, named after its token, expires by itself.
    const ttl = await redis.pttl(keys(tokenA).grace);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(10_000);
    // The resend found it by its own name: without the tombstone too.
    await redis.del(keys(tokenA).tombstone);
    const again = await c.scripts.run('consume', keys(tokenA), args(tokenA));
    expect(again.consumed).toBe(true);
  });

  test('the grace copy is released once the consumer has the value; a reads: n object keeps none for its earlier reads', async ({
    store,
    redis,
    namespace,
  }) => {
    const graces = () => redis.keys(`${namespace}:*:grace:*`);
    const values = Array.from({ length: 20 }, (_, i) => ({ i, bytes: 'x'.repeat(1000) }));
    const refs = (await store.proxyBatch(values, { evict: true })).map((p) => toRef(p));
    const got = await Promise.all(refs.map((r) => resolve(fromRef<{ i: number }>(r)).then((v) => v.i)));
    expect(got).toEqual(values.map((v) => v.i));
    // Each consume left a grace copy for a resend of its own; the consumer, holding the value, unlinks it.
    await waitUntil(async () => (await graces()).length === 0, 'every grace copy is released');
    const twice = toRef(await store.proxy({ two: true }, { reads: 2 }));
    expect(await resolve(fromRef(twice))).toEqual({ two: true });
    expect(await graces()).toEqual([]);
    expect(await resolve(fromRef(twice))).toEqual({ two: true });
    await waitUntil(async () => (await graces()).length === 0, 'the last read releases its grace copy');
    // The tombstone still says who consumed them.
    const err = await resolve(fromRef(refs[0] as (typeof refs)[number])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyResolveMissingKeyError);
    expect((err as Error).message).toMatch(/consumed by pid/);
  });

  test('proxyFromKey with evict consumes on resolve', async ({ store }) => {
    const key = await store.put({ x: 1 });
    const p = await store.proxyFromKey(key, { evict: true });
    expect(await resolve(p)).toEqual({ x: 1 });
    expect(await store.exists(key)).toBe(false);
  });

  test('DEBUG=proxystore:* logs every GET and EVICT with its key', async ({ redisUrl, target, namespace }) => {
    const out = await runChild('test/children/debug-log.ts', {
      env: { ...childEnv({ redisUrl, namespace }), ...targetEnv(target), DEBUG: 'proxystore:*', DEBUG_COLORS: '0' },
    });
    expect(out.code).toBe(0);
    const { key, ephemeral } = out.messages[0] as { key: string; ephemeral: string };
    expect(out.stderr).toContain(`GET ${key}`);
    expect(out.stderr).toContain(`EVICT ${key}`);
    expect(out.stderr).toContain(`GET ${ephemeral}`);
    expect(out.stderr).toContain(`EVICT ${ephemeral}`);
  });
});

describe('across processes', () => {
  async function resolver(ctx: {
    redisUrl: string;
    target: RedisTarget;
    namespace: string;
    storeName: string;
  }): Promise<ChildHandle> {
    const child = spawnChild('test/children/resolver.ts', {
      env: { ...childEnv(ctx), ...targetEnv(ctx.target), STORE_NAME: ctx.storeName },
    });
    await child.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 20_000);
    return child;
  }

  test.for(['ref', 'json'] as const)(
    'a ref resolves in a fresh child process to an equal value (via %s)',
    async (via, { store, redisUrl, target, namespace }) => {
      const value = { ints: [1, 2, 3], map: new Map([['k', new Date(9)]]), big: 2n ** 80n, buf: Buffer.from('hi') };
      const p = await store.proxy(value);
      const child = await resolver({ redisUrl, target, namespace, storeName: store.name });
      await child.send({ refs: [toRef(p)], via });
      const { results } = await child.waitForMessage<{ results: Result[] }>((m) => 'results' in (m as object), 20_000);
      await child.exited;
      expect(results).toHaveLength(1);
      expect(results[0]).toEqual({ ok: true, value });
      await store.evict(getKey(p));
    },
  );

  test('20 resolvers of one ephemeral ref in 2 processes: exactly one gets the value', async ({
    store,
    redisUrl,
    target,
    namespace,
  }) => {
    const p = await store.proxy({ prize: 'the value' }, { evict: true });
    const ref = toRef(p);
    const children = await Promise.all([0, 1].map(() => resolver({ redisUrl, target, namespace, storeName: store.name })));
    for (const child of children) await child.send({ refs: Array.from({ length: 10 }, () => ref), via: 'json', waitForGo: true });
    // Each child has its job; release them together.
    await Promise.all(children.map((c) => c.send({ go: true })));
    const perChild = await Promise.all(
      children.map((c) => c.waitForMessage<{ results: Result[] }>((m) => 'results' in (m as object), 20_000)),
    );
    await Promise.all(children.map((c) => c.exited));
    const results = perChild.flatMap((r) => r.results);
    expect(results).toHaveLength(20);
    const winners = results.filter((r) => r.ok);
    expect(winners).toEqual([{ ok: true, value: { prize: 'the value' } }]);
    const winnerChild = children[perChild.findIndex((r) => r.results.some((x) => x.ok))]!;
    for (const loser of results.filter((r): r is Extract<Result, { ok: false }> => !r.ok)) {
      expect(loser.name).toBe('ProxyResolveMissingKeyError');
      expect(loser.message).toContain(`consumed by pid ${winnerChild.pid}`);
    }
    expect(await store.exists(ref.key)).toBe(false);
  });
});
