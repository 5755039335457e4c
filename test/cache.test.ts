/**
 * The object cache (issue 17, DESIGN.md §7.3, docs/cache.md), on a single
 * Redis and on a Cluster: process A caches an object, process B (a real
 * child process) updates, evicts, consumes or drops it, and A's next read
 * sees the change once the invalidation arrived (polled for at most 1 s;
 * the measured lag is printed). A reads its own writes at once, never
 * resolves a version older than one it has seen, never shares a target
 * between handles, never caches consuming reads, and keeps at most
 * `cacheSize` objects.
 */
import {
  ContextLifetime,
  RedisConnector,
  Store,
  borrow,
  drop,
  fromRef,
  getKey,
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
  type OwnedProxy,
} from '../src/index.js';
import { serialize } from '../src/serialize.js';
import { IDLE_AFTER_MS, STALE_AFTER_MS } from '../src/cache/tracker.js';
import { spawnChild, childEnv, type ChildHandle } from './harness/child.js';
import { connectionOptions, describe, expect, onTestFinished, test } from './harness/store-fixture.js';
import type { RedisTarget } from './harness/target.js';

const LAG_LIMIT_MS = 1000;

function cachingStore(target: RedisTarget, namespace: string, options: { cacheSize?: number; metrics?: boolean } = {}): Store {
  const store = new Store(`cache-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), {
    register: true,
    cacheSize: options.cacheSize ?? 16,
    metrics: options.metrics ?? true,
  });
  onTestFinished(async () => {
    await store.close();
  });
  return store;
}

/** Process B: test/children/cache-peer.ts, with the same store name and namespace. */
class Peer {
  private next = 0;
  private constructor(readonly child: ChildHandle) {}

  static async start(ctx: { redisUrl: string; namespace: string }): Promise<Peer> {
    const child = spawnChild('test/children/cache-peer.ts', { env: { ...childEnv(ctx), STORE_NAME: `cache-${ctx.namespace}` } });
    await child.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 20_000);
    const peer = new Peer(child);
    onTestFinished(async () => {
      await peer.call({ op: 'exit' }).catch(() => undefined);
      await child.exited;
    });
    return peer;
  }

  /** Run an op in B; resolves with what it returned and when (B's Date.now() once the write returned). */
  async call<R = unknown>(msg: Record<string, unknown>): Promise<{ at: number; result: R }> {
    const id = ++this.next;
    await this.child.send({ id, ...msg });
    const reply = await this.child.waitForMessage<{ id: number; ok: boolean; at: number; result: R; message?: string }>(
      (m) => (m as { id?: number }).id === id,
      20_000,
    );
    if (!reply.ok) throw new Error(`peer ${String(msg.op)} failed: ${reply.message}`);
    return reply;
  }
}

/** Poll `read` until `done(value)`, for at most LAG_LIMIT_MS after `since`; the lag from `since`. */
async function lagUntil<T>(since: number, read: () => Promise<T>, done: (value: T) => boolean): Promise<number> {
  for (;;) {
    const value = await read();
    const now = Date.now();
    if (done(value)) return Math.max(0, now - since);
    if (now - since > LAG_LIMIT_MS) throw new Error(`the change was not seen within ${LAG_LIMIT_MS} ms: still ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Read until the cache serves `key` (its tracking connection is up once the first read started it). */
async function warm(store: Store, key: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!store.isCached(key) || store.metrics()?.cacheHit === undefined) {
    if (Date.now() > deadline) throw new Error(`key ${key} never got cached`);
    await store.get(key);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const lags: Record<string, number> = {};

describe('another process changes a cached object', () => {
  test('evict: A sees it gone within 1 s', async ({ target, namespace, redisUrl }) => {
    const a = cachingStore(target, namespace);
    const b = await Peer.start({ redisUrl, namespace });
    const { result } = await b.call<{ key: string }>({ op: 'put', value: { n: 1 } });
    await warm(a, result.key);
    const hits = a.metrics()?.cacheHit?.count ?? 0;
    expect(await a.get(result.key)).toEqual({ n: 1 });
    expect(a.metrics()?.cacheHit?.count).toBe(hits + 1);
    const { at } = await b.call({ op: 'evict', key: result.key });
    lags.evict = await lagUntil(at, () => a.get(result.key), (v) => v === undefined);
    expect(a.isCached(result.key)).toBe(false);
    expect(a.metrics()?.cacheInvalidation?.count).toBeGreaterThanOrEqual(1);
    console.log(`cache invalidation lag, evict by another process: ${lags.evict} ms`);
  });

  test('update: A sees the new version within 1 s, through get and through a new borrow', async ({ target, namespace, redisUrl }) => {
    const a = cachingStore(target, namespace);
    const b = await Peer.start({ redisUrl, namespace });
    const owned = (await a.ownedProxy({ n: 1, tag: 'first' })) as unknown as OwnedProxy<{ n: number; tag: string }>;
    const key = getKey(owned);
    // A caches it through a borrow (a lease-checked handle read) and through get.
    const r1 = await borrow(owned, { populateTarget: false });
    expect({ ...(await resolve(r1)) }).toEqual({ n: 1, tag: 'first' });
    await release(r1);
    await warm(a, key);
    const writer = await mutBorrow(owned);
    const { at } = await b.call({ op: 'update', ref: toRef(writer), value: { n: 2, tag: 'second' } });
    lags.update = await lagUntil(at, () => a.get<{ n: number }>(key), (v) => v?.n === 2);
    console.log(`cache invalidation lag, update by another process: ${lags.update} ms`);
    await b.call({ op: 'release', key });
    const r2 = await borrow(owned, { populateTarget: false });
    expect({ ...(await resolve(r2)) }).toEqual({ n: 2, tag: 'second' });
    await release(r2);
    await drop(owned);
  });

  test('consume: A sees it gone within 1 s', async ({ target, namespace, redisUrl }) => {
    const a = cachingStore(target, namespace);
    const b = await Peer.start({ redisUrl, namespace });
    const p = await a.proxy({ n: 1 }, { evict: true });
    const key = getKey(p);
    await warm(a, key);
    const { at, result } = await b.call<{ value: unknown }>({ op: 'consume', ref: toRef(p) });
    expect(result.value).toEqual({ n: 1 });
    lags.consume = await lagUntil(at, () => a.get(key), (v) => v === undefined);
    console.log(`cache invalidation lag, consume by another process: ${lags.consume} ms`);
  });

  test('drop: A sees it gone within 1 s', async ({ target, namespace, redisUrl }) => {
    const a = cachingStore(target, namespace);
    const b = await Peer.start({ redisUrl, namespace });
    const { result } = await b.call<{ key: string }>({ op: 'put', value: { n: 1 }, owned: true });
    await warm(a, result.key);
    const { at } = await b.call({ op: 'drop', key: result.key });
    lags.drop = await lagUntil(at, () => a.get(result.key), (v) => v === undefined);
    console.log(`cache invalidation lag, drop by another process: ${lags.drop} ms`);
  });

  test('expiry: an object whose ttl ran out leaves the cache', async ({ target, namespace }) => {
    const a = cachingStore(target, namespace);
    const key = await a.put({ n: 1 }, { ttl: 0.3 });
    const putAt = Date.now();
    await warm(a, key);
    const lag = await lagUntil(putAt + 300, () => a.get(key), (v) => v === undefined);
    console.log(`cache invalidation lag, expiry: ${lag} ms after the ttl`);
  });
});

describe('this process', () => {
  test('reads its own writes at once: update, evict, drop, a lifetime close', async ({ target, namespace }) => {
    const a = cachingStore(target, namespace);
    const owned = (await a.ownedProxy({ n: 1 })) as unknown as OwnedProxy<{ n: number }>;
    const key = getKey(owned);
    await warm(a, key);
    const w = await mutBorrow(owned);
    (await resolve(w)).n = 2;
    await update(w);
    expect(await a.get(key)).toEqual({ n: 2 });
    await release(w);
    await drop(owned);
    expect(await a.get(key)).toBeUndefined();

    const plain = await a.put('x');
    await warm(a, plain);
    await a.evict(plain);
    expect(await a.get(plain)).toBeUndefined();

    const lifetime = new ContextLifetime(a);
    const member = await a.put([1, 2, 3], { lifetime });
    await warm(a, member);
    await lifetime.close();
    // The invalidation may still be on its way: the next lookup waits for it.
    expect(await a.get(member)).toBeUndefined();
  });

  test('never resolves a version older than one it has seen: a write Redis lost is an error, not a step back', async ({ target, namespace, redis }) => {
    const a = cachingStore(target, namespace);
    const owned = (await a.ownedProxy({ n: 1 })) as unknown as OwnedProxy<{ n: number }>;
    const key = getKey(owned);
    const w = await mutBorrow(owned);
    (await resolve(w)).n = 2;
    await update(w); // version 1, seen here
    await release(w);
    // What a failover before replication would leave: the old bytes at the old version.
    await redis.set(a.connector.dataKey(key), serialize({ n: 1 }), 'KEEPTTL');
    await redis.hset(a.connector.keys.object('own', key), 'v', '0');
    const r = await borrow(owned, { populateTarget: false });
    await expect(resolve(r)).rejects.toThrow(/read back at version 0, older than a version this process has already seen/);
    await release(r);
    await drop(owned);
  });

  test('resolves: the same object for plain proxies, a fresh copy for each handle', async ({ target, namespace }) => {
    const a = cachingStore(target, namespace);
    const p = await a.proxy({ list: [1, 2] }, { populateTarget: false });
    const ref = toRef(p);
    await warm(a, getKey(p));
    const first = await resolve(fromRef<{ list: number[] }>(ref));
    const second = await resolve(fromRef<{ list: number[] }>(ref));
    // As ProxyStore: the cached object itself.
    expect(second).toBe(first);
    expect(await a.get(getKey(p))).toBe(first);

    const owned = (await a.ownedProxy({ n: 1 }, { populateTarget: false })) as unknown as OwnedProxy<{ n: number }>;
    await warm(a, getKey(owned));
    const r1 = await borrow(owned, { populateTarget: false });
    const r2 = await borrow(owned, { populateTarget: false });
    const t1 = await resolve(r1); // a lease-checked read: the cache keeps its bytes
    const hits = a.metrics()?.cacheHit?.count ?? 0;
    const t2 = await resolve(r2);
    expect(a.metrics()?.cacheHit?.count).toBe(hits + 1);
    expect(t2).toEqual(t1);
    expect(t2).not.toBe(t1);
    // A local mutation of one borrow's target never shows in another handle's resolve or in get.
    t1.n = 99;
    const r3 = await borrow(owned, { populateTarget: false });
    expect((await resolve(r3)).n).toBe(1);
    expect(t2.n).toBe(1);
    expect(await a.get(getKey(owned))).toEqual({ n: 1 });
    await Promise.all([release(r1), release(r2), release(r3)]);
    await drop(owned);
    await a.evict(getKey(p));
  });

  test('never caches a consuming read; a reads-limited object read by get leaves the cache when consumed', async ({ target, namespace }) => {
    const a = cachingStore(target, namespace);
    const p = await a.proxy({ n: 1 }, { reads: 2, populateTarget: false });
    const key = getKey(p);
    const ref = toRef(p);
    expect(await resolve(fromRef(ref))).toEqual({ n: 1 });
    expect(a.isCached(key)).toBe(false);
    await warm(a, key);
    expect(await resolve(fromRef(ref))).toEqual({ n: 1 }); // the last read deletes it
    expect(a.isCached(key)).toBe(false);
    expect(await a.get(key)).toBeUndefined();
  });

  test('keeps at most cacheSize objects, least recently used out first', async ({ target, namespace }) => {
    const a = cachingStore(target, namespace, { cacheSize: 4 });
    const keys = await a.putBatch(Array.from({ length: 10 }, (_, i) => ({ i })));
    await warm(a, keys[0] as string);
    for (const k of keys) await a.get(k);
    expect(keys.map((k) => a.isCached(k))).toEqual([false, false, false, false, false, false, true, true, true, true]);
    await a.get(keys[6] as string); // now the most recent
    await a.get(keys[0] as string); // pushes out the least recent: keys[7]
    expect(keys.map((k) => a.isCached(k))).toEqual([true, false, false, false, false, false, true, false, true, true]);
    await Promise.all(keys.map((k) => a.evict(k)));
  });
});

describe('an idle cache', () => {
  test('after an idle spell (no heartbeat) the first lookup misses and flushes, and caching resumes', async ({ target, namespace }) => {
    const a = cachingStore(target, namespace);
    const key = await a.put({ hot: true });
    await warm(a, key);
    const hits = a.metrics()?.cacheHit?.count ?? 0;
    // The heartbeat pauses after IDLE_AFTER_MS without a lookup; the links then count as quiet after STALE_AFTER_MS.
    await new Promise((r) => setTimeout(r, IDLE_AFTER_MS + STALE_AFTER_MS + 1500));
    expect(a.isCached(key)).toBe(true);
    expect(await a.get(key)).toEqual({ hot: true });
    // Not served from a cache whose tracking may have gone quiet: a miss, and the entries are gone.
    expect(a.metrics()?.cacheHit?.count ?? 0).toBe(hits);
    await warm(a, key);
    expect(await a.get(key)).toEqual({ hot: true });
    expect(a.metrics()?.cacheHit?.count ?? 0).toBeGreaterThan(hits);
    await a.evict(key);
  }, 40_000);
});
