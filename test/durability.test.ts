/**
 * Issue 12 point 5: the connector's `durability: { replicas, timeout }`. On a master + replica
 * this file starts itself (redis-server, `--replicaof`), every write of the library is followed
 * by WAIT on the master (counted in INFO commandstats), writes that start together share one
 * WAIT (group commit), nothing changes without the option, and a write that too few replicas
 * acknowledged (the replica SIGSTOPped) fails with a retryable DurabilityError that says how
 * far it got, leaves nothing behind, and goes through when sent again once the replica is back.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import {
  ContextLifetime,
  DurabilityError,
  InvalidOptionsError,
  LeaseLifetime,
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
  type RefMutProxy,
} from '../src/index.js';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from './harness/fixtures.js';

let master: LocalRedis;
let replica: LocalRedis;
let admin: Redis;

async function inSync(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const info = await admin.info('replication');
    if (/connected_slaves:1/.test(info) && /slave0:.*state=online/.test(info)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`replica not in sync: ${await admin.info('replication')}`);
}

beforeAll(async () => {
  master = await startRedisServer({ args: ['--repl-diskless-sync-delay', '0'] });
  replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  admin = new Redis(master.url);
  await inSync();
}, 60_000);

afterAll(async () => {
  admin?.disconnect();
  await replica?.stop();
  await master?.stop();
});

function storeFor(namespace: string, durability: { replicas: number; timeout?: number } | undefined, commandTimeoutMs = 10_000): Store {
  const connector = new RedisConnector({ url: master.url, namespace, commandTimeoutMs, ...(durability ? { durability } : {}) });
  const store = new Store(`durable-${namespace}-${Math.random()}`, connector, { register: true, leaseTtl: 10 });
  onTestFinished(() => store.close());
  return store;
}

/** Calls of a command on the master since the last RESETSTAT. */
async function calls(command: string): Promise<number> {
  const stats = await admin.info('commandstats');
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
}

/** Every kind of write the option covers, once. */
async function everyWrite(store: Store): Promise<void> {
  const key = await store.put({ a: 1 });
  await store.putBatch([1, 2, 3]);
  const ephemeral = await store.proxy('once', { evict: true });
  expect(await resolve(fromRef<string>(toRef(ephemeral)))).toBe('once');
  const owned = await store.ownedProxy({ log: [] as number[] });
  await release(await borrow(owned));
  const writer = await mutBorrow(owned);
  await resolve(writer);
  writer.log.push(1);
  await update(writer);
  await release(writer);
  await drop(owned);
  const context = new ContextLifetime(store);
  await store.put('member', { lifetime: context });
  await context.close();
  const lease = new LeaseLifetime(store, { expiry: 30 });
  await store.put('leased', { lifetime: lease });
  await lease.extend(5);
  await lease.close();
  await store.evict(key);
}

describe('durability option', () => {
  test('is checked: replicas, timeout in seconds below the command timeout, no unknown keys', () => {
    const make = (durability: unknown, commandTimeoutMs?: number) => () =>
      new RedisConnector({ url: master.url, namespace: 'n', ...(commandTimeoutMs ? { commandTimeoutMs } : {}), durability } as never);
    expect(make({ replicas: 0 })).toThrow(/durability\.replicas must be an integer from 1 to 100, got 0/);
    expect(make({ replicas: 1.5 })).toThrow(InvalidOptionsError);
    expect(make({ timeout: 1 })).toThrow(/durability needs `replicas`/);
    expect(make({ replicas: 1, timeout: 1000 })).toThrow(/in seconds .* \(did you mean 1 s\?\)/);
    expect(make({ replicas: 1, timeout: 2 }, 2000)).toThrow(/shorter than the command timeout \(2000 ms\)/);
    expect(make({ replicas: 1, timeout: 0 })).toThrow(/durability\.timeout must be a number of seconds from 0\.001/);
    expect(make({ replicas: 1, timout: 1 })).toThrow(/unknown option `timout` \(did you mean `timeout`\?\)/);
    expect(make(1)).toThrow(/durability must be an object/);
    const ok = new RedisConnector({ url: master.url, namespace: 'n', durability: { replicas: 1, timeout: 0.5 } });
    expect(ok.config().durability).toEqual({ replicas: 1, timeout: 0.5 });
    expect(RedisConnector.fromConfig(ok.config()).config().durability).toEqual({ replicas: 1, timeout: 0.5 });
  });

  test('every write is followed by WAIT on the master; without the option no WAIT is sent', async ({ namespace }) => {
    await admin.config('RESETSTAT');
    await everyWrite(storeFor(`${namespace}-off`, undefined));
    expect(await calls('wait')).toBe(0);

    await admin.config('RESETSTAT');
    const store = storeFor(namespace, { replicas: 1 });
    await everyWrite(store);
    // put, putBatch, proxy, consume, ownedProxy, borrow, release, mutBorrow, update, release,
    // drop, lifetime create/put/close and lease create/put/extend/close: each its own turn here.
    expect(await calls('wait')).toBeGreaterThanOrEqual(15);
    expect(await calls('wait')).toBeLessThan(40);
  });

  test('writes that start together share one WAIT (group commit)', async ({ namespace }) => {
    const store = storeFor(namespace, { replicas: 1 });
    await store.connector.ready();
    await admin.config('RESETSTAT');
    const keys = await Promise.all(Array.from({ length: 50 }, (_, i) => store.put(i)));
    const waits = await calls('wait');
    expect(waits).toBeGreaterThanOrEqual(1);
    expect(waits).toBeLessThan(10);
    expect(await Promise.all(keys.map((k) => store.get(k)))).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await Promise.all(keys.map((k) => store.evict(k)));
  });

  test('more replicas than there are: DurabilityError saying "ran on the master, acknowledged by 1 of 2", nothing left', async ({ namespace }) => {
    const store = storeFor(namespace, { replicas: 2, timeout: 0.05 }, 600);
    const error = await store.put('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DurabilityError);
    expect((error as DurabilityError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/ran on the master, acknowledged by 1 of 2 replica\(s\) within 0\.05 s/);
    expect((error as Error).message).toMatch(/removed: nothing of it is left/);
    // A put with a reads budget (a script, with its rules record) and a putBatch too.
    await expect(store.put('y', { reads: 2 })).rejects.toThrow(/acknowledged by 1 of 2 .* removed: nothing of it is left/);
    await expect(store.putBatch(['a', 'b'])).rejects.toThrow(/SET \(batch\) failed: it ran on the master, acknowledged by 1 of 2/);
    expect((await admin.keys(`${namespace}:{*`)).length).toBe(0);
  });

  test('a replica that stops acknowledging: writes fail typed, and the same calls go through once it is back', async ({ namespace }) => {
    const store = storeFor(namespace, { replicas: 1, timeout: 0.1 }, 1500);
    const owned = await store.ownedProxy({ n: 1 });
    const shared = await borrow(owned);
    const ephemeral = fromRef<{ e: number }>(toRef(await store.proxy({ e: 1 }, { evict: true })));
    process.kill(replica.pid, 'SIGSTOP');
    let stopped = true;
    try {
      const put = await store.put('y').catch((e: unknown) => e);
      expect(put).toBeInstanceOf(DurabilityError);
      expect((put as Error).message).toMatch(/acknowledged by 0 of 1 replica\(s\)/);
      // The consume ran on the master; the proxy's own token gets its grace copy later.
      const consumed = await resolve(ephemeral).catch((e: unknown) => e);
      expect(consumed).toBeInstanceOf(DurabilityError);
      expect((consumed as Error).message).toMatch(/possibly consumed by this very call: resolve the same proxy again/);
      const released = await release(shared).catch((e: unknown) => e);
      expect(released).toBeInstanceOf(DurabilityError);
      expect((released as Error).message).toMatch(/Redis release failed \(key .*\): it ran on the master/);
      process.kill(replica.pid, 'SIGCONT');
      stopped = false;
      await inSync();
      expect(await resolve(ephemeral)).toEqual({ e: 1 });
      await release(shared);
      await drop(owned);
    } finally {
      if (stopped) process.kill(replica.pid, 'SIGCONT');
    }
    expect(await admin.keys(`${namespace}:{*:d:*`)).toEqual([]);
  });
});

describe('fencing: a borrow granted by a master that a failover replaced', () => {
  test('cannot update or release on the promoted replica, which says it never made that grant', async ({ namespace }) => {
    const a = await startRedisServer({ args: ['--repl-diskless-sync-delay', '0'] });
    const b = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(a.port)] });
    const adminA = new Redis(a.url);
    const adminB = new Redis(b.url);
    onTestFinished(async () => {
      adminA.disconnect();
      adminB.disconnect();
      await b.stop();
      await a.stop();
    });
    const storeA = new Store(`fence-a-${namespace}`, new RedisConnector({ url: a.url, namespace }), { register: true, leaseTtl: 10 });
    const storeB = new Store(`fence-b-${namespace}`, new RedisConnector({ url: b.url, namespace }), { register: true, leaseTtl: 10 });
    onTestFinished(async () => {
      await storeA.close();
      await storeB.close();
    });
    const owned = await storeA.ownedProxy({ log: [] as string[] });
    await release(await borrow(owned)); // grant #1, replicated
    // B sees everything so far, then is promoted while A goes on (a partition: A does not know).
    for (let i = 0; i < 500 && (await adminB.hget(storeB.connector.keys.object('own', getKey(owned)), 'grants')) !== '1'; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await adminB.replicaof('NO', 'ONE');
    const writer = await mutBorrow(owned); // grant #2, on A only
    const ref = toRef(writer);
    expect(ref.grant).toBe(2);

    const keys = {
      data: storeB.connector.dataKey(ref.key),
      record: storeB.connector.keys.object('own', ref.key),
      leases: storeB.connector.keys.object('lease', ref.key),
      done: storeB.connector.keys.object('done', ref.key),
      stage: storeB.connector.dataKey(ref.key),
    };
    const args = { key: ref.key, token: ref.token as string, call: 'call-one-0123456789', write: '1', bytes: Buffer.from('x'), grant: 2 };
    await expect(storeB.connector.scripts.run('update', keys, args)).rejects.toThrow(
      /update: the borrow of key .* is grant #2, which this Redis never made \(it has made 1\)/,
    );
    await expect(storeB.connector.scripts.run('release', keys, { key: ref.key, token: ref.token as string, call: 'call-two-0123456789', grant: 2 })).rejects.toThrow(
      /release: the borrow of key .* is grant #2, which this Redis never made/,
    );
    // A stale grant number for a live token is refused too (a release presenting grant #1 of another borrow).
    const live = await borrow(await storeB.ownedProxy({ log: [] as string[] }));
    const liveRef = toRef(live);
    await expect(
      storeB.connector.scripts.run(
        'release',
        { ...keys, data: storeB.connector.dataKey(liveRef.key), record: storeB.connector.keys.object('own', liveRef.key), leases: storeB.connector.keys.object('lease', liveRef.key), done: storeB.connector.keys.object('done', liveRef.key) },
        { key: liveRef.key, token: liveRef.token as string, call: 'call-three-012345678', grant: 7 },
      ),
    ).rejects.toThrow(/grant #7, which this Redis never made \(it has made 1\)/);
    await expect(
      storeB.connector.scripts.run(
        'release',
        { ...keys, data: storeB.connector.dataKey(liveRef.key), record: storeB.connector.keys.object('own', liveRef.key), leases: storeB.connector.keys.object('lease', liveRef.key), done: storeB.connector.keys.object('done', liveRef.key) },
        { key: liveRef.key, token: liveRef.token as string, call: 'call-four-0123456789', grant: 1 },
      ),
    ).resolves.toBe(1);
    // On A the grant is live: its holder updates and releases as usual.
    const back = fromRef<{ log: string[] }>(ref) as RefMutProxy<{ log: string[] }>;
    await resolve(back);
    back.log.push('a');
    await update(back);
    await release(back);
  });

  test('refs carry the grant number; update and release present it', async ({ namespace }) => {
    const store = storeFor(namespace, undefined);
    const owned = await store.ownedProxy({ n: 0 });
    const first = await borrow(owned);
    const ref1 = toRef(first);
    const writerRef = toRef(await (async () => {
      await release(fromRef(ref1));
      return mutBorrow(owned);
    })());
    expect([ref1.grant, writerRef.grant]).toEqual([1, 2]);
    const writer = fromRef<{ n: number }>(writerRef) as RefMutProxy<{ n: number }>;
    await resolve(writer);
    writer.n = 1;
    await update(writer);
    await release(writer);
    await drop(owned);
  });
});

describe('min-replicas-to-write (NOREPLICAS): the server-side half', () => {
  test('a refused write is a retryable DurabilityError that did not run; nothing changes, and the same calls go through later', async ({ namespace }) => {
    const server = await startRedisServer();
    const adminS = new Redis(server.url);
    const store = new Store(`noreplicas-${namespace}`, new RedisConnector({ url: server.url, namespace, commandTimeoutMs: 2000 }), { register: true, leaseTtl: 10 });
    onTestFinished(async () => {
      await store.close();
      adminS.disconnect();
      await server.stop();
    });
    const kept = await store.put({ kept: true });
    const ephemeral = fromRef<{ e: number }>(toRef(await store.proxy({ e: 1 }, { evict: true })));
    const owned = await store.ownedProxy({ n: 1 });
    await adminS.config('SET', 'min-replicas-to-write', '1');

    const refused = async (call: Promise<unknown>, operation: RegExp) => {
      const error = await call.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DurabilityError);
      expect((error as DurabilityError).retryable).toBe(true);
      expect((error as DurabilityError).mayHaveRun).toBe(false);
      expect((error as Error).message).toMatch(operation);
      expect((error as Error).message).toMatch(/fewer replicas in sync with it than its min-replicas-to-write .* nothing was written/);
    };
    const before = await adminS.dbsize();
    await refused(store.put('new'), /put|SET/);
    await refused(store.put('new', { reads: 2 }), /objectPut/);
    await refused(resolve(ephemeral), /consume/);
    await refused(borrow(owned), /borrow/);
    await refused(store.evict(kept), /evict|UNLINK|DEL/);
    // Reads still work, and nothing was written or taken.
    expect(await adminS.dbsize()).toBe(before);
    expect(await store.get(kept)).toEqual({ kept: true });

    await adminS.config('SET', 'min-replicas-to-write', '0');
    expect(await resolve(ephemeral)).toEqual({ e: 1 });
    await release(await borrow(owned));
    await drop(owned);
    await store.evict(kept);
    expect(await adminS.keys(`${namespace}:{*:d:*`)).toEqual([]);
  });
});
