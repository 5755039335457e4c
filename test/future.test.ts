/**
 * Futures (DESIGN.md §7.2): set once, awaited anywhere, blocked in Redis.
 * Runs on both targets (a single Redis and a Redis Cluster).
 */
import { Cluster, type Redis } from 'ioredis';
import { pack, unpack } from 'msgpackr';
import {
  Future,
  FutureAlreadySetError,
  FutureTimeoutError,
  InvalidOptionsError,
  InvalidRefError,
  ProxyResolveMissingKeyError,
  StoreClosedError,
  fromRef,
  isFuture,
  proxyReviver,
  resolve,
  toRef,
} from '../src/index.js';
import { existingPool, BLOCKING_CONNECTION_NAME } from '../src/future/pool.js';
import { childEnv, spawnChild, type ChildHandle } from './harness/child.js';
import { describe, expect, targetEnv, test, type RedisTarget } from './harness/store-fixture.js';

type Reply = { ok: true; value: unknown } | { ok: false; name: string; message: string };

/** Blocking-wait connections of this library that Redis holds blocked now (every master of a Cluster). */
async function blockedWaits(redis: Redis): Promise<number> {
  const nodes = redis instanceof Cluster ? (redis as Cluster).nodes('master') : [redis];
  let n = 0;
  for (const node of nodes) {
    const list = (await node.client('LIST')) as string;
    for (const line of list.split('\n')) {
      if (line.includes(`name=${BLOCKING_CONNECTION_NAME} `) && / flags=\S*b/.test(line)) n++;
    }
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

function peer(ctx: { redisUrl: string; namespace: string; target: RedisTarget; storeName: string }): ChildHandle {
  return spawnChild('test/children/future-peer.ts', {
    env: { ...childEnv(ctx), ...targetEnv(ctx.target), STORE_NAME: ctx.storeName },
  });
}

async function ready(child: ChildHandle): Promise<ChildHandle> {
  // Generous: a loaded 2-core machine starts 20 tsx processes slowly.
  await child.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 150_000);
  return child;
}

function outcome(child: ChildHandle, timeoutMs = 60_000): Promise<Reply> {
  return child.waitForMessage<Reply>((m) => typeof (m as { ok?: unknown }).ok === 'boolean', timeoutMs);
}

describe('futures in one process', () => {
  test('set before the wait: result() returns it at once, done() is true', async ({ store }) => {
    const future = await store.future<number[]>({ ttl: 60 });
    expect(await future.done()).toBe(false);
    await future.setResult([1, 2, 3]);
    expect(await future.done()).toBe(true);
    expect(await future.result()).toEqual([1, 2, 3]);
    // Not consumed: any number of results.
    expect(await future.result({ timeout: 1 })).toEqual([1, 2, 3]);
  });

  test('wait before the set: the waiter blocks in Redis and wakes with the value', async ({ store, redis }) => {
    const future = await store.future<{ a: number }>({ ttl: 60 });
    const waiting = future.result();
    await until(async () => (await blockedWaits(redis)) >= 1, 'the wait to block');
    await future.setResult({ a: 1 });
    expect(await waiting).toEqual({ a: 1 });
  });

  test('a large result travels through the data key, not the signal', async ({ store }) => {
    const future = await store.future<Buffer>({ ttl: 60 });
    const waiting = future.result();
    const big = Buffer.alloc(100_000, 7);
    await future.setResult(big);
    expect(Buffer.compare(await waiting, big)).toBe(0);
  });

  test('a second setResult rejects FutureAlreadySetError and changes nothing', async ({ store }) => {
    const future = await store.future<string>({ ttl: 60 });
    await future.setResult('first');
    const err = await future.setResult('second').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FutureAlreadySetError);
    expect((err as Error).message).toContain(future.key);
    // From another handle of the same future, too.
    await expect(Future.fromRef<string>(toRef(future)).setResult('third')).rejects.toBeInstanceOf(FutureAlreadySetError);
    expect(await future.result()).toBe('first');
  });

  test('the same setResult call sent again (same token) is recognised and changes nothing', async ({ store }) => {
    const future = await store.future<string>({ ttl: 60 });
    const connector = store.connector;
    const data = connector.dataKey(future.key);
    const prefix = data.slice(0, data.indexOf('}:d:') + 2);
    const keys = {
      data,
      rules: connector.keys.object('rules', future.key),
      tombstone: connector.keys.object('tomb', future.key),
      signal: connector.keys.object('sig', future.key),
      meta: `${prefix}lt`,
      members: `${prefix}members`,
      futures: `${prefix}futures`,
      ends: `${prefix}ends`,
      stage: data,
    };
    const args = { value: Buffer.from(store.encode('v', undefined)), reads: 1, ttlMs: 60_000, signalTtlMs: 60_000, token: 'a'.repeat(22), inline: 1 };
    expect(await connector.scripts.run('futureSet', keys, args)).toBe(1);
    expect(await connector.scripts.run('futureSet', keys, args)).toBe(1);
    await expect(connector.scripts.run('futureSet', keys, { ...args, token: 'b'.repeat(22) })).rejects.toBeInstanceOf(FutureAlreadySetError);
    expect(await future.result()).toBe('v');
  });

  test('timeout: FutureTimeoutError, and the blocking connection is freed', async ({ store, redis }) => {
    const future = await store.future({ ttl: 60 });
    const err = await future.result({ timeout: 0.2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FutureTimeoutError);
    expect((err as Error).message).toContain(future.key);
    await until(async () => (await blockedWaits(redis)) === 0, 'the blocked read to end');
    expect(existingPool(store.connector)?.stats().waits).toBe(0);
    // The future's own default timeout applies too.
    const short = await store.future({ timeout: 0.1 });
    await expect(short.result()).rejects.toBeInstanceOf(FutureTimeoutError);
    // And the future can still be set and read.
    await future.setResult(5);
    expect(await future.result({ timeout: 1 })).toBe(5);
  });

  test("abort: rejects with the signal's reason, frees the connection and its listener", async ({ store, redis }) => {
    const future = await store.future({ ttl: 60 });
    const controller = new AbortController();
    const waiting = future.result({ signal: controller.signal });
    await until(async () => (await blockedWaits(redis)) >= 1, 'the wait to block');
    const reason = new Error('no longer needed');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    await until(async () => (await blockedWaits(redis)) === 0, 'the blocked read to end');
    // An already aborted signal rejects without waiting.
    await expect(future.result({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    // A signal that is never aborted keeps no listener once the wait ends.
    const kept = new AbortController();
    let added = 0;
    let removed = 0;
    const add = kept.signal.addEventListener.bind(kept.signal);
    const remove = kept.signal.removeEventListener.bind(kept.signal);
    kept.signal.addEventListener = ((...a: Parameters<typeof add>) => (added++, add(...a))) as typeof add;
    kept.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (removed++, remove(...a))) as typeof remove;
    const next = future.result({ signal: kept.signal });
    await future.setResult(1);
    expect(await next).toBe(1);
    expect(removed).toBe(added);
  });

  test('store close during a wait rejects it with StoreClosedError', async ({ store, redis }) => {
    const future = await store.future();
    const waiting = future.result();
    const caught = waiting.catch((e: unknown) => e);
    await until(async () => (await blockedWaits(redis)) >= 1, 'the wait to block');
    await store.close();
    const err = await caught;
    expect(err).toBeInstanceOf(StoreClosedError);
    expect((err as Error).message).toContain(future.key);
    await until(async () => (await blockedWaits(redis)) === 0, 'the blocked read to end');
  });

  test('evict: the result is consumed once; reads: n, n times', async ({ store }) => {
    const once = await store.future<string>({ evict: true, ttl: 60 });
    const first = once.result();
    await once.setResult('x');
    expect(await first).toBe('x');
    // This very handle asking again gets what it consumed (as a proxy resolved again does);
    // any other handle finds it consumed.
    expect(await once.result({ timeout: 1 })).toBe('x');
    const err = await Future.fromRef(toRef(once)).result({ timeout: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyResolveMissingKeyError);
    expect((err as ProxyResolveMissingKeyError).consumedBy?.pid).toBe(process.pid);

    const twice = await store.future<string>({ reads: 2, ttl: 60 });
    const waits = [Future.fromRef<string>(toRef(twice)).result(), Future.fromRef<string>(toRef(twice)).result()];
    await twice.setResult('y');
    expect(await Promise.all(waits)).toEqual(['y', 'y']);
    await expect(Future.fromRef(toRef(twice)).result({ timeout: 1 })).rejects.toBeInstanceOf(ProxyResolveMissingKeyError);
  });

  test('store.evict of a result takes its signal along: a later wait does not get a copy of the value', async ({ store, redis }) => {
    const future = await store.future<string>({ ttl: 60 });
    await future.setResult('small');
    await store.evict(future.key);
    expect(await redis.exists(store.connector.keys.object('sig', future.key))).toBe(0);
    await expect(future.result({ timeout: 0.2 })).rejects.toBeInstanceOf(FutureTimeoutError);
  });

  test('ttl: the result expires after it was set', async ({ store, redis }) => {
    const future = await store.future<string>({ ttl: 30 });
    await future.setResult('z');
    const ttl = await redis.pttl(store.connector.dataKey(future.key));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30_000);
    // The signal (which holds a copy of a small value) never outlives the value.
    const signalTtl = await redis.pttl(store.connector.keys.object('sig', future.key));
    expect(signalTtl).toBeGreaterThan(0);
    expect(signalTtl).toBeLessThanOrEqual(30_000);
  });

  test('future.proxy(): resolving waits for the result, here and from its ref', async ({ store }) => {
    const future = await store.future<{ n: number }>({ ttl: 60 });
    const p = future.proxy();
    const ref = toRef(p);
    expect(ref.future).toBe(true);
    const viaJson = JSON.parse(JSON.stringify({ p }), proxyReviver) as { p: { n: number } };
    const waits = [resolve(p), resolve(fromRef<{ n: number }>(ref)), resolve(viaJson.p)];
    await future.setResult({ n: 7 });
    const got = await Promise.all(waits);
    expect(got.map((v) => v.n)).toEqual([7, 7, 7]);
    // A timeout given to the future travels with its proxy's ref.
    const slow = await store.future({ timeout: 0.1 });
    await expect(resolve(fromRef(toRef(slow.proxy())))).rejects.toBeInstanceOf(FutureTimeoutError);
  });

  test('refs: toRef/fromRef, JSON with proxyReviver and msgpackr bring the future back', async ({ store }) => {
    const future = await store.future<number>({ evict: true, ttl: 60, timeout: 5 });
    const ref = toRef(future);
    expect(ref).toMatchObject({ kind: 'future', key: future.key, evict: true, ttl: 60, timeout: 5 });
    const viaJson = JSON.parse(JSON.stringify({ out: future }), proxyReviver) as { out: Future<number> };
    expect(isFuture(viaJson.out)).toBe(true);
    expect(viaJson.out.key).toBe(future.key);
    const viaPack = unpack(pack({ out: future })) as { out: Future<number> };
    expect(isFuture(viaPack.out)).toBe(true);
    // Inside a stored object too.
    const key = await store.put({ out: future, p: future.proxy() }, { ttl: 60 });
    const back = (await store.get(key)) as { out: Future<number> };
    expect(isFuture(back.out)).toBe(true);
    await back.out.setResult(3);
    expect(await Future.fromRef<number>(ref).result()).toBe(3);
    // A future's ref is not a proxy's, and a bad ref is named.
    expect(() => fromRef(ref)).toThrow(InvalidRefError);
    expect(() => Future.fromRef({ ...ref, kind: 'proxy' })).toThrow(/kind/);
    expect(() => Future.fromRef({ ...ref, reads: 0 })).toThrow(InvalidRefError);
  });

  test('bad options are refused with a clear error', async ({ store }) => {
    await expect(store.future({ reads: 0 })).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(store.future({ evict: false, reads: 2 })).rejects.toThrow(/contradicts/);
    await expect(store.future({ timeot: 1 } as never)).rejects.toThrow(/timeout/);
    const future = await store.future();
    await expect(future.result({ timeout: -1 })).rejects.toBeInstanceOf(InvalidOptionsError);
  });

  test('1,000 waits in one process use no more connections than the pool bound', async ({ store }) => {
    const futures = await Promise.all(Array.from({ length: 1000 }, () => store.future<number>({ ttl: 60 })));
    const waits = futures.map((f) => f.result());
    await new Promise((r) => setTimeout(r, 50));
    await Promise.all(futures.map((f, i) => f.setResult(i)));
    expect(await Promise.all(waits)).toEqual(futures.map((_, i) => i));
    const stats = existingPool(store.connector)?.stats();
    expect(stats?.peak).toBeLessThanOrEqual(store.connector.maxBlockingConnections);
    expect(stats?.waits).toBe(0);
  });
});

describe('futures across processes', { timeout: 240_000 }, () => {
  test('a child awaits, this process sets (and the other way round)', async ({ store, redisUrl, namespace, target, redis }) => {
    const child = await ready(peer({ redisUrl, namespace, target, storeName: store.name }));
    const future = await store.future<{ v: string }>({ ttl: 60 });
    await child.send({ await: toRef(future) });
    await until(async () => (await blockedWaits(redis)) >= 1, "the child's wait to block");
    await future.setResult({ v: 'from parent' });
    expect(await outcome(child)).toEqual({ ok: true, value: { v: 'from parent' } });

    const back = await store.future<string>({ ttl: 60 });
    const waiting = back.result({ timeout: 20 });
    child.messages.length = 0;
    await child.send({ set: toRef(back), value: 'from child' });
    expect(await outcome(child)).toEqual({ ok: true, value: null });
    expect(await waiting).toBe('from child');
    child.kill('SIGTERM');
    await child.exited;
  });

  test('20 child processes awaiting one future all wake with the value', async ({ store, redisUrl, namespace, target, redis }) => {
    const future = await store.future<number[]>({ ttl: 60 });
    const children = await Promise.all(Array.from({ length: 20 }, () => ready(peer({ redisUrl, namespace, target, storeName: store.name }))));
    try {
      // Half wait on the future, half on its proxy.
      await Promise.all(children.map((c, i) => c.send({ await: i % 2 === 0 ? toRef(future) : toRef(future.proxy()) })));
      await until(async () => (await blockedWaits(redis)) >= 1, 'the waits to block', 60_000);
      await Promise.all(children.map((c) => c.waitForMessage((m) => (m as { waiting?: boolean }).waiting === true, 60_000)));
      await future.setResult([4, 2]);
      const replies = await Promise.all(children.map((c) => outcome(c)));
      expect(replies).toEqual(children.map(() => ({ ok: true, value: [4, 2] })));
    } finally {
      for (const c of children) c.kill('SIGTERM');
      await Promise.all(children.map((c) => c.exited));
    }
  });

  test('a setter killed before setting: the waiters time out cleanly, and the future can still be set', async ({ store, redisUrl, namespace, target, redis }) => {
    const future = await store.future<string>({ ttl: 60 });
    const setter = await ready(peer({ redisUrl, namespace, target, storeName: store.name }));
    const waiter = await ready(peer({ redisUrl, namespace, target, storeName: store.name }));
    await waiter.send({ await: toRef(future), timeout: 1 });
    const here = future.result({ timeout: 1 });
    setter.kill('SIGKILL');
    await setter.exited;
    const err = await here.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FutureTimeoutError);
    expect(await outcome(waiter)).toMatchObject({ ok: false, name: 'FutureTimeoutError' });
    await until(async () => (await blockedWaits(redis)) === 0, 'no blocked read left');
    await future.setResult('late');
    expect(await future.result()).toBe('late');
    waiter.kill('SIGTERM');
    await waiter.exited;
  });
});
