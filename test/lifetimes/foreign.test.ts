/**
 * Foreign members: objects of other hash tags added to a lifetime (addKey,
 * addProxy, proxyFromKey). Plain keys get a random tag each, so on the
 * Cluster they spread over every master, away from the lifetime's slot: the
 * scripts only record and pop them there, and the client expires and unlinks
 * them on their own masters (src/lifetimes/foreign.ts). On a single Redis the
 * scripts touch them themselves; each test also runs with that switched off
 * (`client-side`), so the Cluster way is exercised on both targets.
 */
import { Cluster, type Redis } from 'ioredis';
import {
  AlreadyOwnedError,
  ContextLifetime,
  LeaseLifetime,
  LifetimeEndedError,
  StaticLifetime,
  Store,
  borrow,
  getKey,
  release,
  resolve,
  type RedisConnector,
} from '../../src/index.js';
import { STATIC_MARGIN_LEASES, lifetimeTuning } from '../../src/lifetimes/base.js';
import { kResetStatic } from '../../src/lifetimes/static.js';
import { randomId } from '../../src/keys.js';
import { afterEach, describe, expect, test, type RedisTarget } from '../harness/store-fixture.js';
import { lifetimeKeys, namespaceKeys, waitUntil } from './util.js';

const saved = { ...lifetimeTuning };
afterEach(() => {
  Object.assign(lifetimeTuning, saved);
});

/** Enough plain keys that every master of a 3-master Cluster holds some (a miss is about 1 in 3 million). */
const FOREIGN = 48;

/** Where each key of a namespace really lives: its master's address (one entry on a single Redis). */
async function nodeOfEachKey(redis: Redis, namespace: string): Promise<Map<string, string>> {
  const client = redis as Redis | Cluster;
  const nodes: Redis[] = 'nodes' in client && typeof client.nodes === 'function' ? (client as Cluster).nodes('master') : [redis];
  const where = new Map<string, string>();
  for (const node of nodes) {
    const address = `${node.options.host}:${node.options.port}`;
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${namespace}:{*`, 'COUNT', 1000);
      cursor = next;
      for (const key of batch) where.set(key, address);
    } while (cursor !== '0');
  }
  return where;
}

/** On the Cluster: the foreign keys sit on every master, some on other masters than the lifetime. */
async function expectSpreadOverMasters(redis: Redis, target: RedisTarget, namespace: string, meta: string, foreign: string[]): Promise<void> {
  if (target.kind !== 'cluster') return;
  const where = await nodeOfEachKey(redis, namespace);
  const masters = (redis as unknown as Cluster).nodes('master').length;
  const lifetimeNode = where.get(meta);
  expect(lifetimeNode).toBeDefined();
  const foreignNodes = foreign.map((k) => where.get(k));
  expect(foreignNodes.every((n) => n !== undefined)).toBe(true);
  expect(new Set(foreignNodes).size).toBe(masters);
  expect(foreignNodes.filter((n) => n !== lifetimeNode).length).toBeGreaterThan(0);
}

const modes = [
  ['as the target needs', undefined],
  ['client-side', false],
] as const;

describe.for(modes)('foreign members (%s)', ([, foreignInScript]) => {
  test('a ContextLifetime with foreign members on every master closes completely, in bounded steps', async ({
    store,
    redis,
    target,
    namespace,
  }) => {
    Object.assign(lifetimeTuning, { chunk: 7, batch: 10, foreignInScript });
    const lifetime = new ContextLifetime(store);
    const own = await store.putBatch(Array.from({ length: 9 }, (_, i) => ({ own: i })), { lifetime });
    const foreign = await store.putBatch(Array.from({ length: FOREIGN }, (_, i) => ({ foreign: i })));
    await lifetime.addKey(...foreign.slice(0, 20));
    await lifetime.addProxy(...(await Promise.all(foreign.slice(20, 40).map((k) => store.proxyFromKey(k)))));
    for (const key of foreign.slice(40)) await store.proxyFromKey(key, { lifetime });
    const k = lifetimeKeys(store, lifetime.id);
    expect(await redis.scard(k.foreign)).toBe(FOREIGN);
    await expectSpreadOverMasters(redis, target, namespace, k.meta, foreign.map((f) => store.connector.dataKey(f)));

    await lifetime.close();

    for (const key of [...own, ...foreign]) expect(await store.exists(key)).toBe(false);
    expect(await namespaceKeys(redis, namespace)).toEqual([k.meta]);
    expect(await redis.hget(k.meta, 'state')).toBe('ended');
  });

  test('under a lease, foreign members on every master carry the lease end; extend moves it, even earlier; close evicts them', async ({
    store,
    redis,
    target,
    namespace,
  }) => {
    Object.assign(lifetimeTuning, { chunk: 5, batch: 8, foreignInScript });
    const lifetime = new LeaseLifetime(store, { expiry: 600 });
    const own = await store.putBatch(Array.from({ length: 6 }, (_, i) => i), { lifetime });
    const foreign = await store.putBatch(Array.from({ length: FOREIGN }, (_, i) => ({ foreign: i })));
    const data = foreign.map((f) => store.connector.dataKey(f));
    for (const key of data) expect(await redis.pttl(key)).toBe(-1);
    await lifetime.addKey(...foreign);
    const k = lifetimeKeys(store, lifetime.id);
    await expectSpreadOverMasters(redis, target, namespace, k.meta, data);

    const expectAllAt = async (at: number) => {
      for (const key of [...data, ...own.map((o) => store.connector.dataKey(o)), k.members, k.foreign]) {
        expect(await redis.pexpiretime(key), key).toBe(at);
      }
    };
    const first = await redis.pexpiretime(k.meta);
    await expectAllAt(first);

    await lifetime.extend(60);
    expect(await redis.pexpiretime(k.meta)).toBe(first + 60_000);
    await expectAllAt(first + 60_000);

    const earlier = new Date(Date.now() + 120_000);
    await lifetime.extend(earlier);
    expect(await redis.pexpiretime(k.meta)).toBe(earlier.getTime());
    await expectAllAt(earlier.getTime());

    await lifetime.close();
    for (const key of [...own, ...foreign]) expect(await store.exists(key)).toBe(false);
    expect(await namespaceKeys(redis, namespace)).toEqual([k.meta]);
  });

  test('a close that died after handing out foreign members is finished by the next close', async ({ store, redis }) => {
    Object.assign(lifetimeTuning, { foreignInScript });
    const lifetime = new LeaseLifetime(store, { expiry: 600 });
    const foreign = await store.putBatch(Array.from({ length: 12 }, (_, i) => i));
    await lifetime.addKey(...foreign);
    const k = lifetimeKeys(store, lifetime.id);
    // One Cluster-style step whose closer dies before its UNLINKs: the members it
    // popped are parked in `evicting`, with the lease's TTL, and still exist.
    const step = await store.connector.scripts.run('lifetimeClose', k, { count: 5, endedTtlMs: 60_000, foreign: 'return', token: randomId(), unlinked: [] });
    expect(step).toMatchObject({ finished: false, evicted: 0, before: 'open' });
    expect(step.handed).toHaveLength(5);
    expect((await redis.smembers(k.evicting)).sort()).toEqual([...step.handed].sort());
    expect(await redis.pexpiretime(k.evicting)).toBe(await redis.pexpiretime(k.meta));
    for (const key of step.handed) expect(await redis.exists(key)).toBe(1);
    expect(await lifetime.done()).toBe(true);

    await (await ContextLifetime.attach(store, lifetime.id)).close();

    for (const key of foreign) expect(await store.exists(key)).toBe(false);
    expect(await redis.exists(k.members, k.foreign, k.evicting)).toBe(0);
    expect(await redis.hget(k.meta, 'state')).toBe('ended');
  });

  test("under the StaticLifetime, foreign members on every master carry the part's lease end plus its outage margin, and its heartbeat moves them", async ({
    connect,
    redis,
    target,
    namespace,
  }) => {
    Object.assign(lifetimeTuning, { chunk: 5, batch: 8, foreignInScript });
    // A 3 s lease: a heartbeat every second.
    const store = new Store('static-foreign', connect(), { leaseTtl: 3 });
    try {
      const foreign = await store.putBatch(Array.from({ length: FOREIGN }, (_, i) => ({ foreign: i })));
      const data = foreign.map((f) => store.connector.dataKey(f));
      await StaticLifetime.instance().addKey(...foreign, { store });
      const k = lifetimeKeys(store, StaticLifetime.instance().idIn(store) as string);
      await expectSpreadOverMasters(redis, target, namespace, k.meta, data);
      const expiries = () => Promise.all([k.meta, k.foreign, ...data].map((key) => redis.pexpiretime(key)));
      const inStep = async (after: number) => {
        const [meta, ...rest] = await expiries();
        const end = Number(await redis.hget(k.meta, 'expiresAt'));
        return meta === end + STATIC_MARGIN_LEASES * 3_000 && meta > after && rest.every((at) => at === meta);
      };
      await waitUntil(() => inStep(0), 'every foreign member carries the lease end plus the outage margin');
      const first = await redis.pexpiretime(k.meta);
      await waitUntil(() => inStep(first), 'the heartbeat moved every foreign member along');
      await StaticLifetime.instance().close();
      for (const key of foreign) expect(await store.exists(key)).toBe(false);
    } finally {
      await StaticLifetime.instance().close();
      StaticLifetime[kResetStatic]();
      await store.close();
    }
  });

  test('addKey with an owned foreign key among others: the plain ones get the lease, the owned one is bound; extend and close follow', async ({ store, redis }) => {
    Object.assign(lifetimeTuning, { foreignInScript });
    const lifetime = await new LeaseLifetime(store, { expiry: 600 }).waitUntilReady();
    const plain = await store.putBatch(Array.from({ length: 12 }, (_, i) => i));
    const owned = await store.ownedProxy({ owned: true });
    const record = store.connector.keys.object('own', getKey(owned));
    await lifetime.addKey(...plain.slice(0, 6), getKey(owned), ...plain.slice(6));
    const leaseEnd = await redis.pexpiretime(lifetimeKeys(store, lifetime.id).meta);
    for (const key of plain) expect(await redis.pexpiretime(store.connector.dataKey(key))).toBe(leaseEnd);
    expect(await redis.hget(record, 'lt')).toBe(lifetime.id);
    expect(Number(await redis.hget(record, 'until'))).toBe(leaseEnd);
    // The owned object's keys expire as its owner's (3 leases after its lease), capped by the lease.
    expect(await redis.pexpiretime(store.connector.dataKey(getKey(owned)))).toBeLessThanOrEqual(leaseEnd);
    await lifetime.extend(60);
    expect(Number(await redis.hget(record, 'until'))).toBe(leaseEnd + 60_000);
    // Another lifetime cannot take it: nothing of that add is recorded.
    const other = await new LeaseLifetime(store, { expiry: 600 }).waitUntilReady();
    const err = await other.addKey(plain[0] as string, getKey(owned)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlreadyOwnedError);
    expect((err as Error).message).toMatch(new RegExp(`key ${getKey(owned)} is owned and bound to lifetime ${lifetime.id} already`));
    const k = lifetimeKeys(store, other.id);
    expect(await redis.exists(k.members)).toBe(0);
    expect(await redis.exists(k.foreign)).toBe(0);
    await other.close();
    const shared = await borrow(owned);
    await lifetime.close();
    for (const key of plain) expect(await store.exists(key)).toBe(false);
    expect(await resolve(shared)).toEqual({ owned: true });
    await expect(borrow(owned)).rejects.toThrow(LifetimeEndedError);
    await release(shared);
    expect(await store.exists(getKey(owned))).toBe(false);
  });

  test('two processes closing the same lifetime at once both finish, and nothing survives', async ({ store, connect, redis, namespace }) => {
    Object.assign(lifetimeTuning, { chunk: 3, foreignInScript });
    const lifetime = await new ContextLifetime(store).waitUntilReady();
    const foreign = await store.putBatch(Array.from({ length: 30 }, (_, i) => i));
    await lifetime.addKey(...foreign);
    await store.putBatch(Array.from({ length: 10 }, (_, i) => i), { lifetime });
    const other = new Store('other', connect());
    try {
      await Promise.all([lifetime.close(), (await ContextLifetime.attach(other, lifetime.id)).close()]);
    } finally {
      await other.close();
    }
    expect(await namespaceKeys(redis, namespace)).toEqual([lifetimeKeys(store, lifetime.id).meta]);
  });
});

describe('client-side expiries racing an extend from another process', () => {
  /** A second store on its own connection, so the hooks below do not see its calls. */
  function otherStore(connect: () => RedisConnector): Store {
    return new Store('other', connect());
  }

  test('an addKey whose keys an extend skipped (not members yet) gives them the new lease end', async ({ store, connect, redis }) => {
    Object.assign(lifetimeTuning, { foreignInScript: false });
    const lifetime = await new LeaseLifetime(store, { expiry: 600 }).waitUntilReady();
    const foreign = await store.putBatch(Array.from({ length: 9 }, (_, i) => i));
    const other = otherStore(connect);
    try {
      const attached = await LeaseLifetime.attach(other, lifetime.id);
      const scripts = store.connector.scripts;
      const run = scripts.run.bind(scripts);
      let extended = false;
      // The extend lands after addKey gave the keys the old end, before it records them.
      scripts.run = (async (...args: Parameters<typeof run>) => {
        if (args[0] === 'lifetimeAddKeys' && !extended) {
          extended = true;
          await attached.extend(300);
        }
        return run(...args);
      }) as typeof run;
      await lifetime.addKey(...foreign);
      expect(extended).toBe(true);
    } finally {
      await other.close();
    }
    const at = await redis.pexpiretime(lifetimeKeys(store, lifetime.id).meta);
    for (const key of foreign) expect(await redis.pexpiretime(store.connector.dataKey(key))).toBe(at);
    await lifetime.close();
  });

  test('an expiry sent after a newer extend walked the keys does not win: the keys end with the newest lease end', async ({
    store,
    connect,
    redis,
  }) => {
    Object.assign(lifetimeTuning, { chunk: 4, foreignInScript: false });
    const lifetime = await new LeaseLifetime(store, { expiry: 600 }).waitUntilReady();
    const foreign = await store.putBatch(Array.from({ length: 14 }, (_, i) => i));
    await lifetime.addKey(...foreign);
    const other = otherStore(connect);
    const newest = new Date(Date.now() + 900_000);
    try {
      const attached = await LeaseLifetime.attach(other, lifetime.id);
      let overtaken = false;
      // The first batch of PEXPIREATs of this extend waits until the other
      // process has extended the lease and walked every member. (Batches go
      // through the client's pipeline on a single Redis, through the masters'
      // own connections on a Cluster.)
      const client = store.connector.client;
      for (const target of client instanceof Cluster ? client.nodes('master') : [client]) {
        const pipeline = target.pipeline.bind(target);
        target.pipeline = ((...args: Parameters<typeof pipeline>) => {
          const p = pipeline(...args);
          if (!overtaken) {
            overtaken = true;
            const exec = p.exec.bind(p);
            p.exec = (async () => {
              await attached.extend(newest);
              return exec();
            }) as typeof p.exec;
          }
          return p;
        }) as typeof pipeline;
      }
      await lifetime.extend(60);
      expect(overtaken).toBe(true);
    } finally {
      await other.close();
    }
    const meta = lifetimeKeys(store, lifetime.id).meta;
    expect(await redis.pexpiretime(meta)).toBe(newest.getTime());
    for (const key of foreign) expect(await redis.pexpiretime(store.connector.dataKey(key)), key).toBe(newest.getTime());
    await lifetime.close();
  });

  test('addKey gives foreign keys the lease end before recording them: one that dies in between leaves them expiring, never without a TTL', async ({
    store,
    redis,
  }) => {
    Object.assign(lifetimeTuning, { foreignInScript: false });
    const lifetime = await new LeaseLifetime(store, { expiry: 600 }).waitUntilReady();
    const foreign = await store.putBatch(Array.from({ length: 9 }, (_, i) => i));
    const data = foreign.map((f) => store.connector.dataKey(f));
    const k = lifetimeKeys(store, lifetime.id);
    const end = await redis.pexpiretime(k.meta);
    const scripts = store.connector.scripts;
    const run = scripts.run.bind(scripts);
    let seen: number[] | undefined;
    // The process "dies" just before the script that would record the keys.
    scripts.run = (async (...args: Parameters<typeof run>) => {
      if (args[0] === 'lifetimeAddKeys') {
        seen = await Promise.all(data.map((key) => redis.pexpiretime(key)));
        throw new Error('killed before recording');
      }
      return run(...args);
    }) as typeof run;
    await expect(lifetime.addKey(...foreign)).rejects.toThrow(/killed before recording/);
    scripts.run = run;
    expect(seen).toEqual(data.map(() => end));
    expect(await redis.exists(k.foreign)).toBe(0);
    // Nothing is a member; the keys go at the lease end, as if added (the leak check sees their TTL).
    await lifetime.close();
    for (const key of data) expect(await redis.pexpiretime(key)).toBe(end);
  });

  test('a proxy of a foreign key added under a lease resolves until the close', async ({ store }) => {
    Object.assign(lifetimeTuning, { foreignInScript: false });
    const lifetime = new LeaseLifetime(store, { expiry: 600 });
    const proxy = await store.proxy({ n: 1 });
    await lifetime.addProxy(proxy);
    expect(await store.get(getKey(proxy))).toEqual({ n: 1 });
    await lifetime.close();
    expect(await store.exists(getKey(proxy))).toBe(false);
  });
});
