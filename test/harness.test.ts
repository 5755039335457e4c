// The test harness itself: child processes, the leak check, local Redis servers and clusters.
import { existsSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import { ping, startRedisCluster, startRedisServer } from '../scripts/local-redis.js';
import { childEnv, killAllChildren, runChild, spawnChild } from './harness/child.js';
import {
  afterEach,
  deleteNamespaceKeys,
  describe,
  expect,
  findLeakedKeys,
  newNamespace,
  test,
} from './harness/fixtures.js';

const ECHO = 'test/children/echo.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('child processes', () => {
  afterEach(killAllChildren);

  test('runChild reports exit code, output and messages', async ({ redisUrl, namespace }) => {
    const res = await runChild(ECHO, { args: ['exit', '3'], env: childEnv({ redisUrl, namespace }) });
    expect(res.code).toBe(3);
    expect(res.signal).toBeNull();
    expect(res.stdout).toContain('stdout from echo');
    expect(res.stderr).toContain('stderr from echo');
    expect(res.messages).toEqual([
      expect.objectContaining({ type: 'ready', redisUrl, namespace, argv: ['exit', '3'] }),
    ]);
  });

  test('spawnChild round-trips messages and exits on request', async () => {
    const child = spawnChild(ECHO);
    await child.waitForMessage((m) => (m as { type: string }).type === 'ready');
    const value = { n: 42n, buf: Buffer.from('hi'), map: new Map([['a', 1]]) };
    await child.send({ type: 'echo', value });
    const reply = await child.waitForMessage<{ value: typeof value }>(
      (m) => (m as { type: string }).type === 'echo',
    );
    expect(reply.value.n).toBe(42n);
    expect(Buffer.from(reply.value.buf).toString()).toBe('hi');
    expect(reply.value.map.get('a')).toBe(1);
    await child.send({ type: 'exit', code: 5 });
    await expect(child.exited).resolves.toEqual({ code: 5, signal: null });
  });

  test('SIGKILL ends a child with signal SIGKILL', async () => {
    const child = spawnChild(ECHO, { args: ['hang'] });
    await child.waitForMessage((m) => (m as { type: string }).type === 'ready');
    child.kill('SIGKILL');
    await expect(child.exited).resolves.toEqual({ code: null, signal: 'SIGKILL' });
    expect(isAlive(child.pid)).toBe(false);
  });

  test('runChild kills a child that outlives its timeout and rejects with its stderr', async () => {
    await expect(runChild(ECHO, { args: ['hang'], timeoutMs: 1_500 })).rejects.toThrow(/timed out after 1500 ms/);
  });

  test('waitForMessage rejects when the child exits first', async () => {
    const child = spawnChild(ECHO, { args: ['exit', '0'] });
    await expect(child.waitForMessage((m) => (m as { type: string }).type === 'never')).rejects.toThrow(
      /exited \(code 0.*stderr from echo/s,
    );
  });
});

describe('leak check', () => {
  test('findLeakedKeys reports keys without a TTL and ignores keys with one', async ({ redis, namespace }) => {
    const other = newNamespace();
    await redis.set(`${namespace}:no-ttl`, 'x');
    await redis.set(`${namespace}:with-ttl`, 'x', 'PX', 60_000);
    await redis.set(`${other}:no-ttl`, 'x');
    try {
      expect(await findLeakedKeys(redis, namespace)).toEqual([`${namespace}:no-ttl`]);
      expect(await deleteNamespaceKeys(redis, namespace)).toBe(2);
      expect(await findLeakedKeys(redis, namespace)).toEqual([]);
      expect(await redis.exists(`${other}:no-ttl`)).toBe(1);
    } finally {
      await redis.del(`${other}:no-ttl`);
    }
  });

  test('namespaces are unique and free of hash-tag braces', ({ namespace }) => {
    expect(namespace).toMatch(/^t-[0-9a-f]{8}$/);
    expect(newNamespace()).not.toBe(newNamespace());
  });

  // The fixture fails a test that leaks: `test.fails` passes only if the test failed.
  test.fails('a test that leaves a key without a TTL fails', async ({ redis, namespace }) => {
    await redis.set(`${namespace}:leaked`, 'x');
  });

  test('a test may leave keys that carry a TTL', async ({ redis, namespace }) => {
    await redis.set(`${namespace}:tombstone`, 'x', 'EX', 60);
  });

  describe('opted out with allowLeftovers', () => {
    test.override({ allowLeftovers: true });
    let leftNamespace = '';

    test('may leave a key without a TTL', async ({ redis, namespace }) => {
      leftNamespace = namespace;
      await redis.set(`${namespace}:kept`, 'x');
    });

    test('whose keys are still deleted after the test', async ({ redis }) => {
      expect(leftNamespace).not.toBe('');
      expect(await redis.exists(`${leftNamespace}:kept`)).toBe(0);
    });
  });
});

describe('local Redis processes', () => {
  test('startRedisServer starts a server and stop() ends it', async () => {
    const server = await startRedisServer();
    const client = new Redis(server.url);
    let dir: string;
    try {
      expect(await client.ping()).toBe('PONG');
      const reply = (await client.config('GET', 'dir')) as string[];
      dir = reply[1] ?? '';
      expect(existsSync(dir)).toBe(true);
    } finally {
      client.disconnect();
      await server.stop();
    }
    expect(isAlive(server.pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(await ping(server.host, server.port)).toBe(false);
  });

  test('startRedisServer reports why a server could not start', async () => {
    await expect(startRedisServer({ args: ['--no-such-directive', 'x'] })).rejects.toThrow(
      /exited early[\s\S]*no-such-directive/,
    );
  });

  test('startRedisCluster gives a working 3-master cluster', async () => {
    const cluster = await startRedisCluster();
    expect(cluster.nodes).toHaveLength(3);
    const client = new Cluster(cluster.nodes);
    try {
      const keys = Array.from({ length: 30 }, (_, i) => `harness-${i}`);
      for (const key of keys) await client.set(key, key);
      for (const key of keys) expect(await client.get(key)).toBe(key);
      // The keys landed in different slots, served by every master.
      const sizes = await Promise.all(client.nodes('master').map((n) => n.dbsize()));
      expect(sizes).toHaveLength(3);
      for (const size of sizes) expect(size).toBeGreaterThan(0);
    } finally {
      client.disconnect();
      await cluster.stop();
    }
    for (const node of cluster.nodes) expect(await ping(node.host, node.port)).toBe(false);
  });
});
