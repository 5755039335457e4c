/**
 * Rules compose with lifetimes (single and cluster projects): `evict`,
 * `reads` and `ttl` together with `lifetime`, and the object ends at
 * whichever comes first. Consumers run in real child processes
 * (test/children/resolver.ts), each resolving a fresh proxy of the ref.
 *
 * - reads + lifetime: a consumed member leaves its lifetime's sets; a close
 *   after it evicts what is left, nothing twice, with no error;
 * - ttl + lifetime: a member ends at the earlier of the lease and its own
 *   end, and no extend (nor a StaticLifetime heartbeat) carries it further;
 * - evict + lease: the lease is the backstop of an input nobody consumes;
 * - reads + ttl: the ttl is the backstop of a budget nobody spends;
 * - foreign members (addKey of objects put with ttl or reads) the same, on
 *   Redis Cluster through the client's per-master step.
 */
import type { Cluster, Redis } from 'ioredis';
import {
  ContextLifetime,
  LeaseLifetime,
  StaticLifetime,
  Store,
  getKey,
  toRef,
  type ProxyRef,
} from '../../src/index.js';
import { LifetimeRecord, endedTtlMs } from '../../src/lifetimes/base.js';
import { kResetStatic } from '../../src/lifetimes/static.js';
import { childEnv, killAllChildren, spawnChild } from '../harness/child.js';
import { afterEach, describe, expect, targetEnv, test, type RedisTarget } from '../harness/store-fixture.js';
import { lifetimeKeys, namespaceKeys, waitUntil } from './util.js';

afterEach(async () => {
  await killAllChildren();
  await StaticLifetime.instance().close();
  StaticLifetime[kResetStatic]();
});

type Result = { ok: true; value: unknown } | { ok: false; name: string; message: string };
interface Ctx {
  redisUrl: string;
  target: RedisTarget;
  namespace: string;
  store: Store;
}

/**
 * A child process, started and ready, that resolves the refs it is given once
 * (one fresh proxy per ref), in order of the results. Tests whose objects
 * have a short ttl start it before the object exists: starting a child can
 * take longer than the ttl on a loaded machine.
 */
async function startResolver(ctx: Ctx): Promise<{ resolve(refs: ProxyRef[]): Promise<Result[]> }> {
  const child = spawnChild('test/children/resolver.ts', {
    env: { ...childEnv(ctx), ...targetEnv(ctx.target), STORE_NAME: ctx.store.name },
  });
  await child.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 60_000);
  return {
    async resolve(refs) {
      await child.send({ refs, via: 'ref' });
      const { results } = await child.waitForMessage<{ results: Result[] }>((m) => 'results' in (m as object), 60_000);
      await child.exited;
      return results;
    },
  };
}

/** Resolve `refs` in a fresh child process (one fresh proxy per ref), in order of the results. */
async function resolveInChild(ctx: Ctx, refs: ProxyRef[]): Promise<Result[]> {
  return (await startResolver(ctx)).resolve(refs);
}

/** The Redis keys of an object in the namespace (data, rules, ...), by kind. */
async function kindsOf(redis: Redis | Cluster, store: Store, key: string): Promise<string[]> {
  const data = store.connector.dataKey(key);
  const name = data.slice(data.indexOf('}:d:') + 4);
  const keys = (await namespaceKeys(redis, store.namespace)).filter((k) => k.endsWith(`:${name}`) || k.includes(`:${name}:`));
  return keys.map((k) => k.slice(k.indexOf('}:') + 2).split(':')[0] as string).sort();
}

function dataExpiry(redis: Redis | Cluster, store: Store, key: string): Promise<number> {
  return redis.pexpiretime(store.connector.dataKey(key));
}

describe('reads + lifetime', () => {
  test('two processes read a reads: 2 member: it leaves its lifetime, and a close after that evicts the rest with no error', async ({ store, redis, redisUrl, target, namespace }) => {
    const ctx = { store, redisUrl, target, namespace };
    const lifetime = await new ContextLifetime(store).waitUntilReady();
    const read = await store.proxy({ n: 1 }, { reads: 2, lifetime });
    const others = await store.putBatch(['x', 'y'], { lifetime });
    const k = lifetimeKeys(store, lifetime.id);
    expect(await redis.zscore(k.ends, getKey(read))).toBe('9999999999999');

    expect(await resolveInChild(ctx, [toRef(read)])).toEqual([{ ok: true, value: { n: 1 } }]);
    expect(await redis.sismember(k.members, getKey(read))).toBe(1);
    expect(await resolveInChild(ctx, [toRef(read)])).toEqual([{ ok: true, value: { n: 1 } }]);
    // The last read took it out of the lifetime's sets, with its rules record.
    expect(await redis.sismember(k.members, getKey(read))).toBe(0);
    expect(await redis.zscore(k.ends, getKey(read))).toBeNull();
    // (Its grace copy went too: the reader released it once it had the value.)
    expect(await kindsOf(redis, store, getKey(read))).toEqual(['tomb']);

    const closed = await new LifetimeRecord(store.connector, lifetime.id).close(endedTtlMs(store));
    expect(closed).toEqual({ evicted: 2, before: 'open' });
    for (const key of others) expect(await store.exists(key)).toBe(false);
    expect(await lifetime.done()).toBe(true);
    await lifetime.close();
  });

  test('a close evicts a member whose budget is not spent, with its rules record; a later read is told it is missing', async ({ store, redis, redisUrl, target, namespace }) => {
    const ctx = { store, redisUrl, target, namespace };
    const lifetime = new LeaseLifetime(store, { expiry: 600 });
    const p = await store.proxy('budget', { reads: 3, lifetime });
    expect(await resolveInChild(ctx, [toRef(p)])).toEqual([{ ok: true, value: 'budget' }]);
    expect(await redis.hget(store.connector.keys.object('rules', getKey(p)), 'reads')).toBe('2');
    // The rules record carries the lease, as the data does.
    expect(await redis.pexpiretime(store.connector.keys.object('rules', getKey(p)))).toBe(await dataExpiry(redis, store, getKey(p)));
    await lifetime.close();
    expect(await kindsOf(redis, store, getKey(p))).toEqual([]);
    const [late] = await resolveInChild(ctx, [toRef(p)]);
    expect(late).toMatchObject({ ok: false, name: 'ProxyResolveMissingKeyError' });
  });
});

describe('ttl + lifetime', () => {
  test('a member ends at its own ttl when that comes before the lease, and extends never carry it further', async ({ store, redis, redisUrl, target, namespace }) => {
    const ctx = { store, redisUrl, target, namespace };
    const lifetime = new LeaseLifetime(store, { expiry: 600 });
    const reader = await startResolver(ctx);
    const p = await store.proxy({ t: 1 }, { ttl: 1.5, lifetime });
    const key = getKey(p);
    const k = lifetimeKeys(store, lifetime.id);
    const ownEnd = Number(await redis.zscore(k.ends, key));
    expect(await dataExpiry(redis, store, key)).toBe(ownEnd);
    expect(ownEnd - (await redis.pexpiretime(k.meta))).toBeLessThan(-500_000);

    await lifetime.extend(600);
    expect(await dataExpiry(redis, store, key)).toBe(ownEnd);
    expect(await reader.resolve([toRef(p)])).toEqual([{ ok: true, value: { t: 1 } }]);
    await waitUntil(async () => !(await store.exists(key)), 'the member reached its own end');
    expect(await lifetime.done()).toBe(false);
    const [late] = await resolveInChild(ctx, [toRef(p)]);
    expect(late).toMatchObject({ ok: false, name: 'ProxyResolveMissingKeyError' });
    // The next extend forgets the member that ended by its ttl.
    await lifetime.extend(1);
    expect(await redis.sismember(k.members, key)).toBe(0);
    expect(await redis.exists(k.ends)).toBe(0);
    await lifetime.close();
  });

  test('a member whose ttl ends after the lease goes at the lease end, and an extend moves it no further than its own end', async ({ store, redis }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 60 });
    const key = await store.put('long', { ttl: 100, lifetime });
    const k = lifetimeKeys(store, lifetime.id);
    const leaseEnd = await redis.pexpiretime(k.meta);
    const ownEnd = Number(await redis.zscore(k.ends, key));
    expect(await dataExpiry(redis, store, key)).toBe(leaseEnd);
    await lifetime.extend(20);
    expect(await dataExpiry(redis, store, key)).toBe(leaseEnd + 20_000);
    await lifetime.extend(60);
    expect(await dataExpiry(redis, store, key)).toBe(ownEnd);
    await lifetime.close();
    expect(await store.exists(key)).toBe(false);
  });

  test('a StaticLifetime heartbeat never carries a member past its own end', async ({ connect, redis }) => {
    const store = new Store('static-ttl', connect(), { leaseTtl: 0.3 });
    try {
      const key = await store.put('static with a ttl', { ttl: 1.2, lifetime: StaticLifetime.instance() });
      const part = lifetimeKeys(store, StaticLifetime.instance().idIn(store) as string);
      const ownEnd = Number(await redis.zscore(part.ends, key));
      // The part's keys expire 3 leases (0.9 s) after now at first: before the member's own end.
      const first = await dataExpiry(redis, store, key);
      expect(first).toBeLessThan(ownEnd);
      // Heartbeats (every 100 ms) move it on, up to its own end and never past it.
      let latest = first;
      await waitUntil(async () => {
        const at = await dataExpiry(redis, store, key);
        if (at > ownEnd) throw new Error(`the heartbeat moved the member to ${at}, past its own end ${ownEnd}`);
        latest = Math.max(latest, at);
        return at === -2;
      }, 'the static member reached its own end', 20_000, 10);
      expect(latest).toBeGreaterThan(first);
      const other = await store.put('still static', { lifetime: StaticLifetime.instance() });
      expect(await store.exists(other)).toBe(true);
    } finally {
      await store.close();
    }
  });

  test('a ContextLifetime forgets members that ended by their ttl when the next ones are put, so its sets do not grow with them', async ({
    store,
    redis,
  }) => {
    const lifetime = new ContextLifetime(store);
    const short = await store.putBatch(['a', 'b', 'c'], { ttl: 0.2, lifetime });
    const k = lifetimeKeys(store, lifetime.id);
    expect(await redis.zcard(k.ends)).toBe(3);
    await waitUntil(async () => (await Promise.all(short.map((key) => store.exists(key)))).every((e) => !e), 'the short members expired');
    const next = await store.put('next', { ttl: 60, lifetime });
    expect(await redis.smembers(k.members)).toEqual([next]);
    expect(await redis.zrange(k.ends, 0, -1)).toEqual([next]);
    await lifetime.close();
  });

  test('putBatch under a lease with reads and a ttl: each member has its budget, its own end and the earlier expiry', async ({ store, redis }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 600 });
    const keys = await store.putBatch(['a', 'b', 'c'], { lifetime, reads: 2, ttl: 30 });
    const k = lifetimeKeys(store, lifetime.id);
    for (const key of keys) {
      const at = await dataExpiry(redis, store, key);
      expect(Number(await redis.zscore(k.ends, key))).toBe(at);
      expect(await redis.pexpiretime(store.connector.keys.object('rules', key))).toBe(at);
      expect(await redis.hgetall(store.connector.keys.object('rules', key))).toEqual({ reads: '2', of: '2' });
    }
    await lifetime.close();
    for (const key of keys) expect(await kindsOf(redis, store, key)).toEqual([]);
  });
});

describe('evict + lease: the lease is the backstop', () => {
  test('an ephemeral input that a process consumes leaves the lease; one that nobody consumes goes at the lease end', async ({ store, redis, redisUrl, target, namespace }) => {
    const ctx = { store, redisUrl, target, namespace };
    const reader = await startResolver(ctx);
    // 4 s: the consume in a child and the checks below must happen before the lease ends, also
    // on a loaded machine (1.5 s was once not enough there).
    const lease = new LeaseLifetime(store, { expiry: 4 });
    const consumed = await store.proxy({ input: 1 }, { evict: true, lifetime: lease });
    const forgotten = await store.proxy({ input: 2 }, { evict: true, lifetime: lease });
    const k = lifetimeKeys(store, lease.id);
    expect(await dataExpiry(redis, store, getKey(forgotten))).toBe(await redis.pexpiretime(k.meta));

    expect(await reader.resolve([toRef(consumed)])).toEqual([{ ok: true, value: { input: 1 } }]);
    expect(await redis.smembers(k.members)).toEqual([getKey(forgotten)]);

    await waitUntil(() => lease.done(), 'the lease ended');
    expect(await store.exists(getKey(forgotten))).toBe(false);
    const [late] = await resolveInChild(ctx, [toRef(forgotten)]);
    expect(late).toMatchObject({ ok: false, name: 'ProxyResolveMissingKeyError' });
  });

  test('proxyFromKey with evict and a lifetime: the key joins the lifetime and the proxy consumes it', async ({ store, redisUrl, target, namespace }) => {
    const ctx = { store, redisUrl, target, namespace };
    const lifetime = await new ContextLifetime(store).waitUntilReady();
    const key = await store.put('existing');
    const p = await store.proxyFromKey(key, { evict: true, lifetime });
    expect(await resolveInChild(ctx, [toRef(p)])).toEqual([{ ok: true, value: 'existing' }]);
    expect(await store.exists(key)).toBe(false);
    // A foreign member that was consumed: the close tolerates it.
    await lifetime.close();
  });
});

describe('reads + ttl', () => {
  test('the ttl is the backstop of a budget nobody spends: the object and its rules record go at its end', async ({ store, redis, redisUrl, target, namespace }) => {
    const ctx = { store, redisUrl, target, namespace };
    const reader = await startResolver(ctx);
    const p = await store.proxy({ r: 1 }, { reads: 3, ttl: 1.5 });
    const key = getKey(p);
    expect(await reader.resolve([toRef(p)])).toEqual([{ ok: true, value: { r: 1 } }]);
    expect(await redis.hget(store.connector.keys.object('rules', key), 'reads')).toBe('2');
    await waitUntil(async () => (await kindsOf(redis, store, key)).length === 0, 'the object and its rules record expired');
    const [late] = await resolveInChild(ctx, [toRef(p)]);
    expect(late).toMatchObject({ ok: false, name: 'ProxyResolveMissingKeyError' });
  });
});

describe('foreign members with their own end or budget', () => {
  test('addKey of an object put with a ttl: it keeps its own end under a longer lease, through extends', async ({ store, redis }) => {
    const key = await store.put('ttl first', { ttl: 30 });
    const plain = await store.put('plain');
    const ownEnd = await dataExpiry(redis, store, key);
    const lease = new LeaseLifetime(store, { expiry: 600 });
    await lease.addKey(key, plain);
    const k = lifetimeKeys(store, lease.id);
    expect(await dataExpiry(redis, store, key)).toBe(ownEnd);
    expect(Number(await redis.zscore(k.ends, store.connector.dataKey(key)))).toBe(ownEnd);
    expect(await dataExpiry(redis, store, plain)).toBe(await redis.pexpiretime(k.meta));
    await lease.extend(600);
    expect(await dataExpiry(redis, store, key)).toBe(ownEnd);
    expect(await dataExpiry(redis, store, plain)).toBe(await redis.pexpiretime(k.meta));
    // A shorter lease ends it first.
    await lease.extend(new Date(Date.now() + 5_000));
    expect(await dataExpiry(redis, store, key)).toBeLessThan(ownEnd);
    await lease.close();
    expect(await store.exists(key)).toBe(false);
    expect(await store.exists(plain)).toBe(false);
  });

  test('addKey of a reads object: its rules record follows the lease and the close; a consumed one is closed with no error', async ({ store, redis, redisUrl, target, namespace }) => {
    const ctx = { store, redisUrl, target, namespace };
    const spent = await store.proxy('spent', { reads: 2 });
    const kept = await store.put('kept', { reads: 2 });
    const lease = new LeaseLifetime(store, { expiry: 600 });
    await lease.addProxy(spent);
    await lease.addKey(kept);
    const rules = store.connector.keys.object('rules', kept);
    expect(await redis.pexpiretime(rules)).toBe(await dataExpiry(redis, store, kept));
    expect(await redis.pexpiretime(rules)).toBeGreaterThan(0);
    await lease.extend(60);
    expect(await redis.pexpiretime(rules)).toBe(await dataExpiry(redis, store, kept));
    expect(await resolveInChild(ctx, [toRef(spent), toRef(spent)])).toEqual([
      { ok: true, value: 'spent' },
      { ok: true, value: 'spent' },
    ]);
    await lease.close();
    expect(await kindsOf(redis, store, kept)).toEqual([]);
    expect(await kindsOf(redis, store, getKey(spent))).toEqual(['tomb']);
  });

  test('a ContextLifetime close takes the rules records of its foreign members along', async ({ store, redis }) => {
    const key = await store.put('budget', { reads: 5 });
    const lifetime = new ContextLifetime(store);
    await lifetime.addKey(key);
    await lifetime.close();
    expect(await kindsOf(redis, store, key)).toEqual([]);
  });
});
