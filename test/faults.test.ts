/**
 * Faults: a Redis restarted mid-run, a connection killed mid-operation, a
 * slow server, memory limits. Each test runs its own redis-server so it can
 * break it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  ProxyResolveMissingKeyError,
  RedisDataLostError,
  ProxyStoreError,
  RedisConnector,
  RedisOperationError,
  Store,
  fromRef,
  getKey,
  resolve,
  toRef,
} from '../src/index.js';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import { afterEach, describe, expect, test } from './harness/fixtures.js';
import { watch } from './harness/monitor.js';

const servers: LocalRedis[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function server(args: string[] = [], port?: number): Promise<LocalRedis> {
  const s = await startRedisServer({ args, ...(port !== undefined ? { port } : {}) });
  servers.push(s);
  return s;
}

/** A test-side client whose connection errors (we cause them) are not printed. */
function quiet<T extends Redis>(client: T): T {
  client.on('error', () => undefined);
  return client;
}

/** Settles `p`, or fails the test if it is still pending after `ms`: nothing may hang. */
async function settlesWithin<T>(p: Promise<T>, ms: number): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([Promise.allSettled([p]).then((r) => r[0] as PromiseSettledResult<T>), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

describe('Redis restarted in the middle of a run', () => {
  test('calls while it is down fail clearly or succeed, none hangs, nothing committed is lost', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'psr-restart-'));
    dirs.push(dir);
    const persist = ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always'];
    const first = await server(persist);
    const store = new Store('restart', new RedisConnector({ url: first.url, namespace: 'restart', commandTimeout: 2000 }), {
      register: true,
    });
    const committed = await store.putBatch(Array.from({ length: 50 }, (_, i) => ({ i })));
    const ephemeral = await store.proxy({ once: 1 }, { evict: true });

    const admin = new Redis(first.url, { retryStrategy: () => null });
    admin.on('error', () => undefined);
    await admin.shutdown('NOSAVE').catch(() => undefined);
    admin.disconnect();

    // Calls made while Redis is down (they may fail at once: settle them now).
    const during = [store.put({ during: 1 }), store.get(committed[0] as string), store.exists(committed[1] as string)].map((p) =>
      settlesWithin(p, 15_000),
    );
    await new Promise((r) => setTimeout(r, 300));
    servers.splice(servers.indexOf(first), 1);
    await server(persist, first.port); // the same port and data dir: the AOF is reloaded

    const outcomes = await Promise.all(during);
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') {
        expect(outcome.reason).toBeInstanceOf(ProxyStoreError);
        expect((outcome.reason as Error).message).toMatch(/Redis \w+ failed/);
      }
    }
    // Everything committed before the restart is still there.
    const values = await Promise.all(committed.map((k) => store.get(k)));
    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => ({ i })));
    // Scripts are loaded again on the new server (EVAL after NOSCRIPT).
    expect(await resolve(fromRef(toRef(ephemeral)))).toEqual({ once: 1 });
    await store.close();
  });
});

describe('a connection killed mid-operation', () => {
  test('ephemeral consumes under CLIENT KILL: resent consumes return their object, none is lost or doubled', async () => {
    const s = await server();
    const store = new Store('kill', new RedisConnector({ url: s.url, namespace: 'kill' }), { register: true });
    const admin = quiet(new Redis(s.url));
    // Large objects, so that connections die while replies are still on the wire:
    // those consumes ran, and ioredis resends them on the new connection.
    const count = 120;
    const proxies = await store.proxyBatch(
      Array.from({ length: count }, (_, i) => ({ n: i, pad: Buffer.alloc(256 * 1024, i) })),
      { evict: true },
    );
    const refs = proxies.map((p) => toRef(p));
    const monitorBase = quiet(new Redis(s.url));
    await monitorBase.ping();
    const monitor = quiet(await monitorBase.monitor());
    let consumeCalls = 0;
    monitor.on('monitor', (_t: string, args: string[]) => {
      if (/^eval/i.test(args[0] ?? '') && args.some((a) => a.includes(':tomb:'))) consumeCalls++;
    });
    // Kill the store's connection 20 times while the consumes are in flight, then let it recover.
    let kills = 0;
    const storeId = async () => String(await (store.connector.client as Redis).client('ID'));
    const killer = (async () => {
      for (let attempt = 0; attempt < 200 && kills < 20; attempt++) {
        const killed = await admin.client('KILL', 'ID', await storeId().catch(() => '0')).catch(() => 0);
        kills += Number(killed) > 0 ? 1 : 0;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const outcomes = await Promise.allSettled(refs.map((ref) => resolve(fromRef<{ n: number }>(ref))));
    await killer;
    const got = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.n] : []));
    const failed = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as Error] : []));
    await new Promise((r) => setTimeout(r, 100));
    monitor.disconnect();
    monitorBase.disconnect();
    expect(kills).toBeGreaterThan(0);
    // Consumes really were resent (more calls than objects) ...
    expect(consumeCalls).toBeGreaterThan(count);
    for (const err of failed) {
      expect(err).toBeInstanceOf(ProxyStoreError);
      expect(err).not.toBeInstanceOf(ProxyResolveMissingKeyError); // a resend never loses its own object
    }
    // ... and every object came back exactly once: none lost to a resend, none doubled.
    expect(got.sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(failed).toEqual([]);
    await admin.quit();
    await store.close();
  });

  test('puts and gets under CLIENT KILL either succeed or fail clearly, and what succeeded is stored', async () => {
    const s = await server();
    const store = new Store('kill2', new RedisConnector({ url: s.url, namespace: 'kill2' }));
    const admin = quiet(new Redis(s.url));
    let killing = true;
    const killer = (async () => {
      while (killing) {
        await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes').catch(() => undefined);
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    const outcomes = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => store.put({ i })));
    killing = false;
    await killer;
    for (const [i, o] of outcomes.entries()) {
      if (o.status === 'fulfilled') expect(await store.get(o.value)).toEqual({ i });
      else expect(o.reason).toBeInstanceOf(ProxyStoreError);
    }
    await admin.quit();
    await store.close();
  });
});

describe('scripts flushed from the server', () => {
  test('after SCRIPT FLUSH the next call gets NOSCRIPT, falls back to EVAL and succeeds; later calls are EVALSHA', async () => {
    const s = await server();
    const store = new Store('flush', new RedisConnector({ url: s.url, namespace: 'flush' }), { register: true });
    const admin = quiet(new Redis(s.url));
    const [e1, e2, e3] = await store.proxyBatch([[1], [2], [3]], { evict: true });
    const wire = await watch(admin, store.connector.client as Redis);
    await resolve(fromRef(toRef(e1)));
    await admin.script('FLUSH');
    const flushed = await wire.during(() => resolve(fromRef(toRef(e2))));
    expect(flushed.map((c) => c.command)).toEqual(['evalsha', 'eval']);
    const later = await wire.during(() => resolve(fromRef(toRef(e3))));
    expect(later.map((c) => c.command)).toEqual(['evalsha']);
    wire.stop();
    await admin.quit();
    await store.close();
  });
});

describe('a slow Redis', () => {
  test('DEBUG SLEEP longer than the command timeout gives a clear timeout error', async () => {
    const s = await server(['--enable-debug-command', 'yes']);
    const store = new Store('slow', new RedisConnector({ url: s.url, namespace: 'slow', commandTimeout: 300 }));
    const key = await store.put('v');
    const admin = quiet(new Redis(s.url));
    const sleeping = admin.debug('SLEEP', '1.5');
    await new Promise((r) => setTimeout(r, 50));
    const err = await store.get(key).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisOperationError);
    expect((err as Error).message).toMatch(new RegExp(`Redis GET failed \\(key ${key}\\): no reply within the command timeout`));
    await sleeping;
    expect(await store.get(key)).toBe('v');
    await admin.quit();
    await store.close();
  });
});

describe('memory policy', () => {
  test('with maxmemory and noeviction, a put over the limit fails clearly and earlier objects are intact', async () => {
    const s = await server(['--maxmemory', '8mb', '--maxmemory-policy', 'noeviction']);
    const store = new Store('oom', new RedisConnector({ url: s.url, namespace: 'oom' }));
    const small = await store.putBatch(Array.from({ length: 10 }, (_, i) => ({ i })));
    const err = await store.put(Buffer.alloc(16 * 1024 * 1024, 1)).then(
      () => store.put(Buffer.alloc(16 * 1024 * 1024, 2)),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisOperationError);
    expect((err as Error).message).toMatch(/out of memory/);
    expect(await Promise.all(small.map((k) => store.get(k)))).toEqual(Array.from({ length: 10 }, (_, i) => ({ i })));
    await store.close();
  });

  test('a server that may evict keys on its own gets one warning at connect', async () => {
    const s = await server(['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru']);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if ((w as { code?: string }).code === 'PROXYSTORE_EVICTION_POLICY') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const store = new Store('evicting', new RedisConnector({ url: s.url, namespace: 'evicting' }));
      await store.put('x');
      await store.get('nothing');
      await new Promise((r) => setTimeout(r, 100));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toMatch(/allkeys-lru.*noeviction/);
      await store.close();

      const quiet = await server(['--maxmemory-policy', 'noeviction']);
      const store2 = new Store('quiet', new RedisConnector({ url: quiet.url, namespace: 'quiet' }));
      await store2.put('x');
      await new Promise((r) => setTimeout(r, 100));
      expect(warnings).toHaveLength(1);
      await store2.close();
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('objects removed behind the library', () => {
  test('a proxy whose object was deleted by hand fails with ProxyResolveMissingKeyError, not a crash', async () => {
    const s = await server();
    const store = new Store('gone', new RedisConnector({ url: s.url, namespace: 'gone' }));
    const p = await store.proxy([1], { populateTarget: false });
    const admin = quiet(new Redis(s.url));
    await store.connector.ready();
    // Its keys only (FLUSHALL would be Redis losing its data: see test/data-lost.test.ts).
    await admin.del(...(await admin.keys('gone:{*')));
    await expect(resolve(p)).rejects.toThrow(ProxyResolveMissingKeyError);
    expect(getKey(p)).toBeTypeOf('string');
    await admin.flushall();
    await expect(resolve(await store.proxyFromKey(getKey(p)))).rejects.toThrow(RedisDataLostError);
    await admin.quit();
    await store.close();
  });
});
