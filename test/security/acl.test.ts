/**
 * The library works for a Redis ACL user allowed only its namespace's keys
 * and the commands listed in docs/security.md, and such a user can reach
 * nothing else, Lua scripts included. Runs against its own redis-server so
 * that the users it creates touch no other test.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../../scripts/local-redis.js';
import {
  ContextLifetime,
  LeaseLifetime,
  ProxyResolveMissingKeyError,
  RedisConnector,
  RedisOperationError,
  Store,
  borrow,
  clone,
  drop,
  fromRef,
  getKey,
  intoOwned,
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
} from '../../src/index.js';
import { afterAll, beforeAll, deleteNamespaceKeys, describe, expect, onTestFinished, test } from '../harness/fixtures.js';

/** The minimal command list of docs/security.md ("Redis ACL"). */
const COMMANDS = [
  // the store and ephemeral proxies
  'get', 'set', 'mset', 'exists', 'getrange', 'unlink', 'evalsha', 'eval', 'time', 'rename', 'pexpire',
  // ownership scripts
  'copy', 'del', 'hget', 'hset', 'hdel', 'pexpireat', 'zadd', 'zcard', 'zrange', 'zrangebyscore', 'zrem', 'zremrangebyscore', 'zscore', 'pexpiretime', 'sismember',
  // lifetime scripts and done()
  'hmget', 'pttl', 'sadd', 'spop', 'srandmember', 'srem', 'sscan',
  // deduped objects (a reference without an end after ones with a ttl)
  'persist',
  // the grant counter of borrows (fencing) and the version of owned objects (update)
  'hincrby',
];

let server: LocalRedis;
let admin: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

interface AclOptions {
  /** Commands granted (default: the documented list). */
  commands?: string[];
  /** Namespace the store uses (default: the user's own). */
  storeNamespace?: string;
  /** ioredis's ready check (INFO); the documented setup turns it off. */
  readyCheck?: boolean;
  /** The store's cacheSize: 0 by default (the base list; the cache's own grants are tested below). */
  cacheSize?: number;
  /** Channels granted (the cache's `__redis__:invalidate`). */
  channels?: string[];
}

/**
 * Create a user allowed `~<namespace>:{*` and the given commands, and a store
 * connected as that user. Both, and the namespace's keys, go when the test ends.
 */
async function aclStore(namespace: string, options: AclOptions = {}): Promise<Store> {
  const user = `app-${namespace}`;
  const password = randomBytes(12).toString('hex');
  const commands = options.commands ?? COMMANDS;
  // Its objects (`~<ns>:{*`) and the data-loss detector's generation markers (`~<ns>:generation:{*}`).
  const patterns = [`~${escapeGlob(namespace)}:{*`, `~${escapeGlob(namespace)}:generation:{*}`];
  const channels = (options.channels ?? []).map((c) => `&${c}`);
  await admin.call('ACL', 'SETUSER', user, 'reset', 'on', `>${password}`, ...patterns, 'resetchannels', ...channels, '-@all', ...commands.map((c) => `+${c}`));
  await admin.call('ACL', 'LOG', 'RESET');
  const url = `redis://${user}:${password}@${server.host}:${server.port}`;
  const store = new Store(`acl-${namespace}`, new RedisConnector({
    url,
    namespace: options.storeNamespace ?? namespace,
    redisOptions: { enableReadyCheck: options.readyCheck ?? false },
  }), { register: true, cacheSize: options.cacheSize ?? 0, metrics: true });
  onTestFinished(async () => {
    // A store refused a command may fail to close what it left open (its lifetimes): it closes anyway.
    await store.close().catch(() => undefined);
    await admin.call('ACL', 'DELUSER', user);
    await deleteNamespaceKeys(admin, namespace);
  });
  return store;
}

/** What ACL LOG recorded as refused, as `<reason> <object>` (e.g. `command config|get`). */
async function refused(): Promise<string[]> {
  const entries = (await admin.call('ACL', 'LOG')) as unknown[][];
  return entries.map((entry) => {
    const fields = new Map<string, unknown>();
    for (let i = 0; i < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
    return `${String(fields.get('reason'))} ${String(fields.get('object'))}`;
  });
}

describe('a Redis ACL user with only its namespace and the documented commands', () => {
  test('put and get work', async ({ namespace }) => {
    const store = await aclStore(namespace);
    const key = await store.put({ a: [1, 2] });
    expect(await store.get(key)).toEqual({ a: [1, 2] });
    await store.evict(key);
  });

  test('exists works', async ({ namespace }) => {
    const store = await aclStore(namespace);
    const key = await store.put('x');
    expect(await store.exists(key)).toBe(true);
    await store.evict(key);
    expect(await store.exists(key)).toBe(false);
  });

  test('evict works', async ({ namespace }) => {
    const store = await aclStore(namespace);
    const key = await store.put('x');
    await store.evict(key);
    expect(await admin.keys(`${namespace}:{*`)).toEqual([]);
  });

  test('putBatch works', async ({ namespace }) => {
    const store = await aclStore(namespace);
    const keys = await store.putBatch([1, 'two', [3]]);
    expect(await Promise.all(keys.map((k) => store.get(k)))).toEqual([1, 'two', [3]]);
    for (const k of keys) await store.evict(k);
  });

  test('a proxy resolves from its ref', async ({ namespace }) => {
    const store = await aclStore(namespace);
    const p = await store.proxy([1, 2, 3]);
    expect(await resolve(fromRef(toRef(p)))).toEqual([1, 2, 3]);
    await store.evict(getKey(p));
  });

  test('proxyFromKey reads the header', async ({ namespace }) => {
    const store = await aclStore(namespace);
    const key = await store.put([1]);
    const p = await store.proxyFromKey<number[]>(key);
    expect(Array.isArray(p)).toBe(true);
    await store.evict(key);
  });

  test('an ephemeral proxy is consumed once, and the second resolve reads the tombstone', async ({ namespace }) => {
    const store = await aclStore(namespace);
    const ref = toRef(await store.proxy({ once: true }, { evict: true }));
    expect(await resolve(fromRef(ref))).toEqual({ once: true });
    await expect(resolve(fromRef(ref))).rejects.toThrow(/consumed by pid \d+/);
    await expect(resolve(fromRef(ref))).rejects.toThrow(ProxyResolveMissingKeyError);
  });

  test('the only command Redis refuses it is the CONFIG GET that learns the value size limit', async ({ namespace }) => {
    const store = await aclStore(namespace);
    const keys = await store.putBatch([1, 2]);
    await store.get(keys[0]!);
    await store.exists(keys[1]!);
    await resolve(fromRef(toRef(await store.proxy('e', { evict: true }))));
    await store.proxyFromKey(keys[0]!);
    for (const k of keys) await store.evict(k);
    expect(await refused()).toEqual(['command config|get']);
  });

  test('without CONFIG the value size limit falls back to 512 MB and a 2 MB value is stored', async ({ namespace }) => {
    const store = await aclStore(namespace);
    expect(await store.connector.maxValueBytes()).toBe(512 * 1024 * 1024);
    const key = await store.put(Buffer.alloc(2 * 1024 * 1024, 1));
    expect((await store.get<Buffer>(key))!.length).toBe(2 * 1024 * 1024);
    await store.evict(key);
  });

  test('with +info added, ioredis\'s default ready check works too', async ({ namespace }) => {
    const store = await aclStore(namespace, { commands: [...COMMANDS, 'info'], readyCheck: true });
    const key = await store.put('x');
    expect(await store.get(key)).toBe('x');
    await store.evict(key);
    expect(await refused()).toEqual(['command config|get']);
  });
});

describe('the command list is minimal', () => {
  /** Every operation the library has, once. */
  async function workflow(store: Store): Promise<void> {
    await coreWorkflow(store);
    await lifetimeWorkflow(store);
    await dedupeWorkflow(store);
    const owned = await store.ownedProxy({ n: 1 });
    const shared = await borrow(owned);
    await release(shared);
    const writer = await mutBorrow(owned);
    (await resolve(writer)).n = 2;
    await update(writer);
    await release(writer);
    const copy = await clone(owned);
    const adopted = await intoOwned(await store.proxy([1]));
    for (const o of [owned, copy]) await drop(o);
    await drop(adopted);
  }

  async function lifetimeWorkflow(store: Store): Promise<void> {
    const context = new ContextLifetime(store);
    await store.putBatch([1, 2], { lifetime: context });
    const loose = await store.put('joins later');
    await context.addKey(loose);
    await context.done();
    await context.close();
    const lease = new LeaseLifetime(store, { expiry: 30 });
    await store.put('leased', { lifetime: lease });
    await lease.addKey(await store.put('joins the lease'));
    await lease.extend(10);
    await lease.close();
  }

  async function dedupeWorkflow(store: Store): Promise<void> {
    const key = await store.put('shared', { dedupe: true, ttl: 30 });
    await store.put('shared', { dedupe: true });
    const lease = new LeaseLifetime(store, { expiry: 30 });
    await store.put('shared', { dedupe: true, lifetime: lease });
    await lease.extend(10);
    await lease.close();
    for (let i = 0; i < 2; i++) await store.evict(key);
  }

  async function coreWorkflow(store: Store): Promise<void> {
    const key = await store.put({ a: 1 });
    const keys = await store.putBatch([1, 2]);
    await store.get(key);
    await store.exists(key);
    await resolve(fromRef(toRef(await store.proxyFromKey(key))));
    const ref = toRef(await store.proxy('once', { evict: true }));
    await resolve(fromRef(ref));
    await resolve(fromRef(ref)).catch((err: unknown) => {
      if (!(err instanceof ProxyResolveMissingKeyError)) throw err;
    });
    for (const k of [key, ...keys]) await store.evict(k);
  }

  test('the whole list runs every operation', async ({ namespace }) => {
    await admin.script('FLUSH');
    await workflow(await aclStore(namespace));
  });

  // Commands this single-Redis workflow cannot reach: PTTL only when a
  // lifetime on a Redis Cluster hands its foreign members to the client to
  // unlink. The cluster lifetime suites cover that path. (ZREMRANGEBYSCORE,
  // SRANDMEMBER and SREM are reached through deduped objects: their
  // references are pruned, and a close releases the lifetime's.)
  const UNREACHED = new Set(['pttl']);
  test.for(COMMANDS.filter((c) => !UNREACHED.has(c)))('without +%s some operation fails', async (command, { namespace }) => {
    // Scripts must load with EVAL: an earlier test may have left them in the server's cache.
    await admin.script('FLUSH');
    const store = await aclStore(namespace, { commands: COMMANDS.filter((c) => c !== command) });
    await expect(workflow(store)).rejects.toThrow(/NOPERM|can't run this command/);
  });
});

describe('what such a user cannot do', () => {
  test('a store of another namespace on its connection gets a RedisOperationError naming NOPERM', async ({ namespace }) => {
    const store = await aclStore(namespace, { storeNamespace: `other-${namespace}` });
    const err = await store.put('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisOperationError);
    expect((err as Error).message).toMatch(/^Redis SET failed \(key [^)]+\): NOPERM/);
  });

  test('a namespace that only starts with its own (<ns>:victim) is refused too: the { in ~<ns>:{* is what stops it', async ({ namespace }) => {
    const store = await aclStore(namespace, { storeNamespace: `${namespace}:victim` });
    await expect(store.put('x')).rejects.toThrow(/NOPERM/);
  });

  test('a command outside the list is refused', async ({ namespace }) => {
    const store = await aclStore(namespace);
    await expect(store.connector.client.keys('*')).rejects.toThrow(/NOPERM/);
    await expect(store.connector.client.flushall()).rejects.toThrow(/NOPERM/);
  });

  test('EVAL grants nothing more: a script cannot reach keys outside the namespace', async ({ namespace }) => {
    const store = await aclStore(namespace);
    await admin.set(`other-${namespace}`, 'secret');
    try {
      await expect(store.connector.client.eval("return redis.call('GET', KEYS[1])", 1, `other-${namespace}`)).rejects.toThrow(/NOPERM/);
      await expect(store.connector.client.eval(`return redis.call('GET', 'other-${namespace}')`, 0)).rejects.toThrow(/can't access at least one of the keys/);
    } finally {
      await admin.unlink(`other-${namespace}`);
    }
  });

  test('EVAL grants nothing more: a script cannot run commands outside the list', async ({ namespace }) => {
    const store = await aclStore(namespace);
    await expect(store.connector.client.eval("return redis.call('KEYS', '*')", 0)).rejects.toThrow(/can't run this command/);
    await expect(store.connector.client.eval(`return redis.call('LPUSH', KEYS[1], 'v')`, 1, `${namespace}:{x}`)).rejects.toThrow(/can't run this command/);
  });
});

/** What futures need besides {@link COMMANDS} (docs/security.md, "Futures"). */
const FUTURE_COMMANDS = ['xadd', 'xread', 'xrange', 'xlen', 'scard', 'multi', 'exec', 'client|setname'];

describe('futures for an ACL user with the documented commands and those of futures', () => {
  test('a wait blocks and wakes, a lifetime close ends a wait, and nothing is refused', async ({ namespace }) => {
    const store = await aclStore(namespace, { commands: [...COMMANDS, ...FUTURE_COMMANDS] });
    const future = await store.future<number[]>({ ttl: 60 });
    const waiting = future.result({ timeout: 20 });
    await new Promise((r) => setTimeout(r, 200));
    await future.setResult([1, 2]);
    expect(await waiting).toEqual([1, 2]);
    const lifetime = new ContextLifetime(store);
    const ended = await store.future({ lifetime });
    const waitingEnded = ended.result({ timeout: 20 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    await lifetime.close();
    expect(await waitingEnded).toMatchObject({ name: 'LifetimeEndedError' });
    expect((await refused()).filter((r) => !r.includes('config'))).toEqual([]);
    await store.evict(future.key);
  });
});

/** What chunked values (over the store's `chunkSize`) need besides {@link COMMANDS} (docs/security.md, "Large objects"). */
const LARGE_COMMANDS = ['multi', 'exec', 'type', 'hlen', 'hexists', 'strlen'];

describe('large objects for an ACL user with the documented commands and those of chunked values', () => {
  /** Every chunked path: put, get, getRange, putStream, getStream, a consume, an owned update. */
  async function chunkedWorkflow(store: Store, namespace: string): Promise<void> {
    const small = new Store(`acl-chunks-${namespace}`, store.connector, { chunkSize: 1024, cacheSize: 0, register: true });
    try {
      const value = randomBytes(5 * 1024 + 7);
      const key = await small.put(value);
      expect(await small.get(key)).toEqual(value);
      expect(await small.getRange(key, 1000, 3000)).toEqual(value.subarray(1000, 3000));
      const streamed = await small.putStream(Readable.from([value.subarray(0, 3000), value.subarray(3000)]));
      const parts: Buffer[] = [];
      for await (const part of small.getStream(streamed)) parts.push(part as Buffer);
      expect(Buffer.concat(parts)).toEqual(value);
      expect(await resolve(fromRef(toRef(await small.proxy(value, { evict: true }))))).toEqual(value);
      const owned = await small.ownedProxy(value);
      const writer = await mutBorrow(owned);
      await resolve(writer);
      await update(writer);
      await release(writer);
      await drop(owned);
      await small.evict(key);
      await small.evict(streamed);
    } finally {
      await small.close({ closeConnector: false });
    }
  }

  test('put, get, getRange, putStream, getStream, consume and update of chunked values work, and nothing is refused', async ({ namespace }) => {
    const store = await aclStore(namespace, { commands: [...COMMANDS, ...LARGE_COMMANDS] });
    await chunkedWorkflow(store, namespace);
    expect((await refused()).filter((r) => !r.includes('config'))).toEqual([]);
    // The chunks went over the raw chunk connection (AUTH as the user: no grant of its own), none through ioredis.
    expect(store.connector.raw.stats.raw).toBeGreaterThan(10);
    expect(store.connector.raw.stats.fallbacks).toBe(0);
  });

  test.for(LARGE_COMMANDS)('without +%s some chunked operation is refused', async (command, { namespace }) => {
    await admin.script('FLUSH');
    const store = await aclStore(namespace, { commands: [...COMMANDS, ...LARGE_COMMANDS.filter((c) => c !== command)] });
    await chunkedWorkflow(store, namespace).catch(() => undefined);
    expect((await refused()).some((r) => r.includes(command))).toBe(true);
  });
});

/** The refused entries other than CONFIG GET, with how many times each was refused. */
async function refusedCounts(): Promise<Map<string, number>> {
  const entries = (await admin.call('ACL', 'LOG')) as unknown[][];
  const out = new Map<string, number>();
  for (const entry of entries) {
    const fields = new Map<string, unknown>();
    for (let i = 0; i < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
    const what = `${String(fields.get('reason'))} ${String(fields.get('object'))}`;
    if (!what.includes('config')) out.set(what, (out.get(what) ?? 0) + Number(fields.get('count')));
  }
  return out;
}

/** What the object cache (on by default, cacheSize 16) needs besides {@link COMMANDS} (docs/security.md). */
const CACHE_COMMANDS = ['client|id', 'client|tracking', 'client|setname', 'subscribe', 'ping'];

describe('the object cache for an ACL user with the documented commands and those of the cache', () => {
  test('reads are served from the cache, and nothing is refused', async ({ namespace }) => {
    const store = await aclStore(namespace, { commands: [...COMMANDS, ...CACHE_COMMANDS], channels: ['__redis__:invalidate'], cacheSize: 16 });
    await store.ready();
    const key = await store.put({ hot: true });
    const deadline = Date.now() + 5000;
    while ((store.metrics()?.cacheHit?.count ?? 0) === 0) {
      if (Date.now() > deadline) throw new Error('never served from the cache');
      expect(await store.get(key)).toEqual({ hot: true });
    }
    expect((await refused()).filter((r) => !r.includes('config'))).toEqual([]);
    await store.evict(key);
  });

  test('without them the cache is off (it only misses), the store works, and tracking is not retried', async ({ namespace }) => {
    const store = await aclStore(namespace, { cacheSize: 16 });
    const key = await store.put({ cold: true });
    for (let i = 0; i < 5; i++) expect(await store.get(key)).toEqual({ cold: true });
    await new Promise((r) => setTimeout(r, 1500));
    const first = await refusedCounts();
    expect(first.size).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1500));
    // ACL LOG counts repeats of an entry in place: the same entries, with the same counts.
    expect(await refusedCounts()).toEqual(first);
    expect(store.metrics()?.cacheHit).toBeUndefined();
    await store.evict(key);
  });
});
