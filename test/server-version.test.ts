/**
 * A Redis older than 7.0 is refused at once, naming its version, before any
 * script runs (src/redis/limits.ts). Redis 6 cannot be installed here, so
 * the old servers are a tiny loopback RESP server that answers the
 * handshake as a given version would (HELLO, INFO, CONFIG, EVAL); the real
 * 7.0 server of the run shows that a supported version passes.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { ContextLifetime, RedisConnector, RedisOperationError, Store } from '../src/index.js';
import { isSupportedVersion, parseVersion } from '../src/redis/limits.js';
import { afterEach, describe, expect, test } from './harness/fixtures.js';

type Reply = string | number | null | Reply[] | { error: string };

function encode(reply: Reply): string {
  if (reply === null) return '$-1\r\n';
  if (typeof reply === 'number') return `:${reply}\r\n`;
  if (typeof reply === 'string') return `$${Buffer.byteLength(reply)}\r\n${reply}\r\n`;
  if (Array.isArray(reply)) return `*${reply.length}\r\n${reply.map(encode).join('')}`;
  return `-${reply.error}\r\n`;
}

/** The commands of every complete RESP array in `buf`, and what is left over. */
function parse(buf: Buffer): { commands: string[][]; rest: Buffer } {
  const commands: string[][] = [];
  let at = 0;
  for (;;) {
    if (at >= buf.length || buf[at] !== 0x2a) break; // '*'
    let end = buf.indexOf('\r\n', at);
    if (end < 0) break;
    const count = Number(buf.toString('latin1', at + 1, end));
    let pos = end + 2;
    const args: string[] = [];
    let complete = true;
    for (let i = 0; i < count; i++) {
      end = buf.indexOf('\r\n', pos);
      if (end < 0) {
        complete = false;
        break;
      }
      const len = Number(buf.toString('latin1', pos + 1, end));
      if (end + 2 + len + 2 > buf.length) {
        complete = false;
        break;
      }
      args.push(buf.toString('utf8', end + 2, end + 2 + len));
      pos = end + 2 + len + 2;
    }
    if (!complete) break;
    commands.push(args);
    at = pos;
  }
  return { commands, rest: buf.subarray(at) };
}

interface FakeRedis {
  url: string;
  /** Every command received, lowercased name first. */
  seen: string[][];
  close(): Promise<void>;
}

interface FakeOptions {
  version: string;
  /** HELLO: answered (6.0+), unknown (older), or refused by ACL. */
  hello?: 'answer' | 'unknown' | 'noperm';
  /** INFO: answered, or refused by ACL. */
  info?: 'answer' | 'noperm';
}

const open: FakeRedis[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
});

/** A loopback server that answers like a Redis of `version` (just enough for ioredis and the connector). */
async function fakeRedis(options: FakeOptions): Promise<FakeRedis> {
  const seen: string[][] = [];
  const sockets = new Set<Socket>();
  const hello = options.hello ?? 'answer';
  const info = options.info ?? 'answer';
  const answer = (args: string[]): Reply => {
    const [name = '', sub = ''] = [args[0]?.toLowerCase(), args[1]?.toLowerCase()];
    switch (name) {
      case 'hello':
        if (hello === 'unknown') return { error: "ERR unknown command 'HELLO'" };
        if (hello === 'noperm') return { error: "NOPERM this user has no permissions to run the 'hello' command" };
        return ['server', 'redis', 'version', options.version, 'proto', 2, 'id', 1, 'mode', 'standalone', 'role', 'master', 'modules', []];
      case 'info':
        if (info === 'noperm') return { error: "NOPERM this user has no permissions to run the 'info' command" };
        return `# Server\r\nredis_version:${options.version}\r\nredis_mode:standalone\r\n\r\n# Persistence\r\nloading:0\r\n`;
      case 'client':
        return sub === 'setinfo' && !isSupportedVersion(parseVersion(options.version) ?? [0]) ? { error: "ERR Unknown subcommand or wrong number of arguments for 'setinfo'" } : 'OK';
      case 'config':
        return [];
      case 'ping':
        return 'PONG';
      case 'select':
        return 'OK';
      case 'eval':
        // The version probe: redis.REDIS_VERSION is nil before 7.0.
        return args[1]?.includes('REDIS_VERSION') ? null : { error: 'ERR scripts are not expected here' };
      case 'quit':
        return 'OK';
      default:
        return { error: `ERR unknown command '${args[0]}'` };
    }
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      const { commands, rest } = parse(Buffer.concat([pending, chunk]));
      pending = rest;
      for (const args of commands) {
        seen.push([args[0]?.toLowerCase() ?? '', ...args.slice(1)]);
        const reply = answer(args);
        socket.write(typeof reply === 'string' && /^(OK|PONG)$/.test(reply) ? `+${reply}\r\n` : encode(reply));
        if (args[0]?.toLowerCase() === 'quit') socket.end();
      }
    });
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const fake: FakeRedis = {
    url: `redis://127.0.0.1:${port}`,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  open.push(fake);
  return fake;
}

describe('the Redis version is checked once per connection', () => {
  test('a Redis 6.2 is refused at once, naming its version, and no script runs on it', async ({ namespace }) => {
    const fake = await fakeRedis({ version: '6.2.14' });
    const store = new Store('old', new RedisConnector({ url: fake.url, namespace }));
    const port = new URL(fake.url).port;
    const err = await store.ready().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisOperationError);
    expect((err as Error).message).toMatch(
      new RegExp(`^Redis 6\\.2\\.14 at 127\\.0\\.0\\.1:${port} is not supported: proxystore-redis needs Redis 7\\.0 or later`),
    );
    // A script call (a lifetime's creation) is refused with the same error, before anything is sent.
    const lifetime = new ContextLifetime(store);
    await expect(lifetime.waitUntilReady()).rejects.toThrow(/Redis 6\.2\.14 .* is not supported/);
    // Plain commands too, once the version is known.
    await expect(store.put('x')).rejects.toThrow(/Redis 6\.2\.14 .* is not supported/);
    expect(fake.seen.filter(([name]) => name === 'evalsha' || name === 'set')).toEqual([]);
    expect(fake.seen.filter(([name, script]) => name === 'eval' && !script?.includes('REDIS_VERSION'))).toEqual([]);
    await store.close();
  });

  test('a Redis 7.0 passes the check', async ({ namespace }) => {
    const fake = await fakeRedis({ version: '7.0.0' });
    const connector = new RedisConnector({ url: fake.url, namespace });
    await connector.ready();
    expect(fake.seen.some(([name]) => name === 'hello')).toBe(true);
    await connector.close();
  });

  test('the real server of the run (7.0 or later) passes', async ({ redisUrl, namespace }) => {
    const connector = new RedisConnector({ url: redisUrl, namespace });
    await expect(connector.ready()).resolves.toBeUndefined();
    await connector.close();
  });

  test('without HELLO (Redis 5) the server is refused as older than 6.0', async ({ namespace }) => {
    const fake = await fakeRedis({ version: '5.0.14', hello: 'unknown' });
    const connector = new RedisConnector({ url: fake.url, namespace });
    await expect(connector.ready()).rejects.toThrow(/Redis older than 6\.0 \(it does not know HELLO\) at 127\.0\.0\.1:\d+ is not supported/);
    await connector.close();
  });

  test('HELLO refused by ACL: the version comes from INFO server', async ({ namespace }) => {
    const fake = await fakeRedis({ version: '6.2.7', hello: 'noperm' });
    const connector = new RedisConnector({ url: fake.url, namespace, redisOptions: { enableReadyCheck: false } });
    await expect(connector.ready()).rejects.toThrow(/Redis 6\.2\.7 at .* is not supported/);
    await connector.close();
  });

  test('HELLO and INFO refused: a script reading redis.REDIS_VERSION tells (nil before 7.0)', async ({ namespace }) => {
    const fake = await fakeRedis({ version: '6.2.7', hello: 'noperm', info: 'noperm' });
    const connector = new RedisConnector({ url: fake.url, namespace, redisOptions: { enableReadyCheck: false } });
    await expect(connector.ready()).rejects.toThrow(/Redis older than 7\.0 \(its Lua has no redis\.REDIS_VERSION\) at .* is not supported/);
    expect(fake.seen.some(([name, script]) => name === 'eval' && script === 'return redis.REDIS_VERSION')).toBe(true);
    await connector.close();
  });

  test('versions are compared numerically', () => {
    expect(isSupportedVersion(parseVersion('7.0.0') as number[])).toBe(true);
    expect(isSupportedVersion(parseVersion('10.0.1') as number[])).toBe(true);
    expect(isSupportedVersion(parseVersion('6.99.99') as number[])).toBe(false);
    expect(parseVersion('7.2')).toEqual([7, 2, 0]);
    expect(parseVersion('not a version')).toBeUndefined();
  });
});
