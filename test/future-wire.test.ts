/**
 * Futures on the wire (MONITOR, CLIENT LIST), on a redis-server this file
 * starts itself: a wait is one blocked XREAD and nothing else while it waits
 * (no polling); a set is one EVALSHA; 1,000 waits in one process open no
 * more connections than the pool bound.
 */
import { Redis } from 'ioredis';
import { ENV_NAMESPACE, ENV_URL, toRef } from '../src/index.js';
import { runChild } from './harness/child.js';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import { RedisConnector, Store } from '../src/index.js';
import { BLOCKING_CONNECTION_NAME, existingPool } from '../src/future/pool.js';
import { afterAll, beforeAll, describe, expect, newNamespace, onTestFinished, test } from './harness/fixtures.js';
import { openMonitor } from './harness/monitor.js';

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

function storeOn(options: { maxBlockingConnections?: number } = {}): Store {
  const namespace = newNamespace();
  const store = new Store(`wire-${namespace}`, new RedisConnector({ url: server.url, namespace, ...options }), { register: true });
  onTestFinished(async () => {
    await store.close();
    await admin.flushall();
  });
  return store;
}

/** Our blocking connections: [all, blocked now]. */
async function blocking(): Promise<[number, number]> {
  const lines = ((await admin.client('LIST')) as string).split('\n').filter((l) => l.includes(`name=${BLOCKING_CONNECTION_NAME} `));
  return [lines.length, lines.filter((l) => / flags=\S*b/.test(l)).length];
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('futures on the wire', () => {
  test('while a wait blocks, MONITOR shows nothing at all; the set is one EVALSHA and wakes the one XREAD', async () => {
    const store = storeOn();
    await store.ready();
    const future = await store.future<string>();
    const adminAddress = `${admin.stream.localAddress}:${admin.stream.localPort}`;
    const seen: string[][] = [];
    const stop = await openMonitor(admin, (args, from) => {
      if (!from.endsWith(adminAddress)) seen.push(args);
    });
    try {
      const waiting = future.result();
      await until(async () => (await blocking())[1] === 1, 'the wait to block');
      const before = seen.length;
      // One GET (is it there?), the XREAD: nothing else.
      expect(seen.map((a) => (a[0] ?? '').toLowerCase())).toEqual(expect.arrayContaining(['get', 'xread']));
      expect(seen.filter((a) => (a[0] ?? '').toLowerCase() === 'xread')).toHaveLength(1);
      await sleep(1500);
      expect(seen.slice(before), 'commands sent while the wait blocked').toEqual([]);
      await future.setResult('woken');
      expect(await waiting).toBe('woken');
      await sleep(100);
      const after = seen.slice(before).map((a) => (a[0] ?? '').toLowerCase());
      // The set's one script; the woken wait needs no GET (a small result comes in the signal).
      expect(after.filter((c) => c === 'evalsha' || c === 'eval')).toHaveLength(1);
      expect(after).not.toContain('get');
      expect(after).not.toContain('xread');
      const xreads = seen.filter((a) => (a[0] ?? '').toLowerCase() === 'xread');
      expect(xreads).toHaveLength(1);
      expect(xreads[0]).toEqual(expect.arrayContaining(['BLOCK', '0', 'STREAMS', store.connector.keys.object('sig', future.key)]));
    } finally {
      stop();
    }
    await store.evict(future.key);
  });

  test('a result set long ago (its signal expired) is read by the GET sent with the XREAD, in one write; the XREAD is then woken and its connection freed', async () => {
    const store = storeOn();
    await store.ready();
    const future = await store.future<string>();
    await future.setResult('old');
    // As if the signal had expired (it lives signalTtl; the value has no ttl).
    await admin.del(store.connector.keys.object('sig', future.key));
    const adminAddress = `${admin.stream.localAddress}:${admin.stream.localPort}`;
    const seen: [string[], string][] = [];
    const stop = await openMonitor(admin, (args, from) => {
      if (!from.endsWith(adminAddress)) seen.push([args, from]);
    });
    try {
      expect(await future.result({ timeout: 10 })).toBe('old');
      await until(async () => (await blocking())[1] === 0, 'the XREAD to be woken');
    } finally {
      stop();
    }
    const gets = seen.filter(([a]) => (a[0] ?? '').toLowerCase() === 'get');
    const xreads = seen.filter(([a]) => (a[0] ?? '').toLowerCase() === 'xread');
    expect(gets).toHaveLength(1);
    // The GET went on the blocking connection, right before the first XREAD (same client, same write).
    expect(xreads.length).toBeGreaterThanOrEqual(1);
    expect(gets[0]?.[1]).toBe(xreads[0]?.[1]);
    expect(seen.findIndex(([a]) => (a[0] ?? '').toLowerCase() === 'get') + 1).toBe(seen.findIndex(([a]) => (a[0] ?? '').toLowerCase() === 'xread'));
  });

  test('a GET the server refuses on the blocking connection: the wait reads the usual way and rejects as that read does, leaving no blocked connection', async () => {
    const namespace = newNamespace();
    await admin.acl('SETUSER', `noget-${namespace}`, 'on', '>pw', '~*', '+@all', '-get');
    const url = new URL(server.url);
    url.username = `noget-${namespace}`;
    url.password = 'pw';
    const store = new Store(`wire-${namespace}`, new RedisConnector({ url: url.toString(), namespace }), { register: true });
    onTestFinished(async () => {
      await store.close();
      await admin.acl('DELUSER', `noget-${namespace}`);
      await admin.flushall();
    });
    const future = await store.future<string>();
    await expect(future.result({ timeout: 10 })).rejects.toThrow(/NOPERM|permission/i);
    await until(async () => (await blocking())[1] === 0, 'the XREAD to be woken');
  });

  test('1,000 concurrent waits open at most maxBlockingConnections connections', async () => {
    const store = storeOn({ maxBlockingConnections: 4 });
    const futures = await Promise.all(Array.from({ length: 1000 }, () => store.future<number>({ ttl: 60 })));
    const waits = futures.map((f) => f.result());
    await until(async () => (await blocking())[1] >= 1, 'the waits to block');
    await sleep(200);
    const [open] = await blocking();
    expect(open).toBeGreaterThanOrEqual(1);
    expect(open).toBeLessThanOrEqual(4);
    await Promise.all(futures.map((f, i) => f.setResult(i)));
    expect(await Promise.all(waits)).toEqual(futures.map((_, i) => i));
    expect(existingPool(store.connector)?.stats().peak).toBeLessThanOrEqual(4);
    expect((await blocking())[1]).toBe(0);
  });

  test('a blocking connection killed during a wait: the wait reads again on a new one and wakes with the value', async () => {
    const store = storeOn();
    const future = await store.future<string>({ ttl: 60 });
    const waiting = future.result({ timeout: 30 });
    await until(async () => (await blocking())[1] === 1, 'the wait to block');
    const list = ((await admin.client('LIST')) as string).split('\n').find((l) => l.includes(`name=${BLOCKING_CONNECTION_NAME} `)) as string;
    const id = /\bid=(\d+)/.exec(list)?.[1] as string;
    await admin.client('KILL', 'ID', id);
    await until(async () => {
      const again = ((await admin.client('LIST')) as string).split('\n').filter((l) => l.includes(`name=${BLOCKING_CONNECTION_NAME} `) && / flags=\S*b/.test(l));
      return again.length === 1 && !again[0]?.includes(`id=${id} `);
    }, 'a new blocked read');
    await future.setResult('after the kill');
    expect(await waiting).toBe('after the kill');
  });

  test('a process that waited on a future ends by itself: idle blocking connections do not hold it', { timeout: 120_000 }, async () => {
    const store = storeOn();
    const future = await store.future<number[]>({ ttl: 60 });
    const message = JSON.stringify({ input: toRef(future.proxy()) });
    const child = runChild('test/children/future-env-waiter.ts', {
      args: [message],
      env: { [ENV_URL]: server.url, [ENV_NAMESPACE]: store.namespace, STORE_NAME: store.name },
      timeoutMs: 90_000,
    });
    await until(async () => (await blocking())[1] === 1, "the child's wait to block");
    await future.setResult([7, 8]);
    const out = await child;
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.trim()).toBe('[7,8]');
  });

  test('a timed-out wait leaves no blocked connection behind; close leaves no connection at all', async () => {
    const store = storeOn();
    const future = await store.future();
    await expect(future.result({ timeout: 0.3 })).rejects.toMatchObject({ name: 'FutureTimeoutError' });
    await until(async () => (await blocking())[1] === 0, 'the read to end');
    await store.close();
    await until(async () => (await blocking())[0] === 0, 'the connections to close');
  });
});
