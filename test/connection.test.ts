/**
 * Connection failures of clients the connector creates (src/redis/connection.ts):
 * they name the connection error, a call made while Redis is down fails
 * without waiting for the command timeout, and a command whose caller was
 * told it failed is never written later. Each test runs its own redis-server
 * (or a TCP proxy in front of one) so it can break it.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { RedisConnector, RedisOperationError, Store } from '../src/index.js';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import { afterEach, describe, expect, namespaceKeys, test } from './harness/fixtures.js';

const servers: LocalRedis[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function server(port?: number): Promise<LocalRedis> {
  const s = await startRedisServer(port !== undefined ? { port } : {});
  servers.push(s);
  return s;
}

async function stop(s: LocalRedis): Promise<void> {
  servers.splice(servers.indexOf(s), 1);
  await s.stop();
}

/**
 * A TCP proxy to one Redis that can swallow what clients send (a network
 * that died without a word), and cut every connection. Loopback only.
 */
async function blackHole(target: LocalRedis): Promise<{ url: string; swallow(on: boolean): void; cutAll(): void; close(): Promise<void> }> {
  let swallowing = false;
  const pairs = new Set<[Socket, Socket]>();
  const proxy: Server = createServer((client) => {
    const upstream = createConnection({ host: target.host, port: target.port });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.on('data', (chunk) => {
      if (!swallowing) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolveListen) => proxy.listen(0, '127.0.0.1', resolveListen));
  const port = (proxy.address() as { port: number }).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    swallow: (on) => {
      swallowing = on;
    },
    cutAll: () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
    },
    close: async () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise((r) => proxy.close(r));
    },
  };
}

describe('Redis down', () => {
  test('a put while Redis is down fails naming the cause (ECONNREFUSED host:port), not the command timeout', async ({ namespace }) => {
    const s = await server();
    const store = new Store('down', new RedisConnector({ url: s.url, namespace, commandTimeoutMs: 10_000 }));
    await store.ready();
    await stop(s);
    const err = await store.put({ during: 'outage' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisOperationError);
    expect((err as Error).message).toMatch(new RegExp(`^Redis SET failed \\(key [\\w-]+\\): Redis is unreachable: connect ECONNREFUSED 127\\.0\\.0\\.1:${s.port} `));
    expect((err as Error).message).toMatch(/the command was not sent/);
    expect((err as Error).message).not.toMatch(/command timeout/);
    await store.close();
  });

  test('after Redis comes back, nothing of a put that failed while it was down is written', async ({ namespace }) => {
    const s = await server();
    // A short timeout, so that without the guard the failed puts would still sit in
    // ioredis's offline queue (its 20-retry flush comes later) when Redis is back.
    const store = new Store('back', new RedisConnector({ url: s.url, namespace, commandTimeoutMs: 1000 }));
    await store.ready();
    await stop(s);
    const failed = await Promise.allSettled([store.put({ lost: 1 }), store.put({ lost: 2 }), store.putBatch([{ lost: 3 }, { lost: 4 }])]);
    expect(failed.every((o) => o.status === 'rejected')).toBe(true);
    const again = await server(s.port); // the same address: the client reconnects to it
    let key: string | undefined;
    for (let attempt = 0; attempt < 100 && key === undefined; attempt++) {
      key = await store.put({ after: true }).catch(() => undefined);
      if (key === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(key).toBeDefined();
    const raw = new Redis(again.url);
    // Only the put made after the restart is there: the failed ones were not queued.
    expect(await namespaceKeys(raw, namespace)).toEqual([store.connector.dataKey(key as string)]);
    await store.evict(key as string);
    await raw.quit();
    await store.close();
  });

  test('ready() rejects with the connection error while Redis is down and resolves once it is up', async ({ namespace }) => {
    const s = await server();
    const port = s.port;
    await stop(s);
    const connector = new RedisConnector({ url: `redis://127.0.0.1:${port}`, namespace });
    const store = new Store('ready', connector);
    await expect(store.ready()).rejects.toThrow(new RegExp(`Redis connect failed: Redis is unreachable: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
    await server(port);
    let ready = false;
    for (let attempt = 0; attempt < 100 && !ready; attempt++) {
      ready = await connector.ready().then(
        () => true,
        () => false,
      );
      if (!ready) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready).toBe(true);
    await store.close();
  });
});

describe('a command whose caller was told it failed is never written later', () => {
  test('a put that timed out on a dead connection is not resent when the connection comes back', async ({ namespace }) => {
    const s = await server();
    const hole = await blackHole(s);
    const store = new Store('timeout', new RedisConnector({ url: hole.url, namespace, commandTimeoutMs: 300 }));
    const before = await store.put('before');
    // The network dies silently: the SET is written to the socket and never arrives.
    hole.swallow(true);
    const err = await store.put({ late: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisOperationError);
    expect((err as Error).message).toMatch(/no reply within the command timeout \(300 ms\).*the command was sent and may or may not have run/);
    // The connection is cut and comes back: ioredis resends what had no reply, except what already failed.
    hole.swallow(false);
    hole.cutAll();
    let after: string | undefined;
    for (let attempt = 0; attempt < 100 && after === undefined; attempt++) {
      after = await store.put('after').catch(() => undefined);
      if (after === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    const raw = new Redis(s.url);
    await new Promise((r) => setTimeout(r, 100)); // anything resent has arrived by now
    const keys = await namespaceKeys(raw, namespace);
    expect(keys.sort()).toEqual([store.connector.dataKey(before), store.connector.dataKey(after as string)].sort());
    await raw.del(...keys);
    await raw.quit();
    await store.close();
    await hole.close();
  });

  test('a command still waiting for its reply when the connection dies is resent, and succeeds', async ({ namespace }) => {
    const s = await server();
    const hole = await blackHole(s);
    const store = new Store('resend', new RedisConnector({ url: hole.url, namespace, commandTimeoutMs: 5000 }));
    await store.ready();
    hole.swallow(true);
    const pending = store.put({ resent: true });
    await new Promise((r) => setTimeout(r, 100));
    hole.swallow(false);
    hole.cutAll();
    const key = await pending;
    expect(await store.get(key)).toEqual({ resent: true });
    await store.evict(key);
    await store.close();
    await hole.close();
  });
});
