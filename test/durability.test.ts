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
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
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
  master = await startRedisServer();
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
