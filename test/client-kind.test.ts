/**
 * A client made by another copy of ioredis (another node_modules, a bundled
 * copy) is recognised by duck-typing, not `instanceof`; a client that cannot
 * work says what differs (src/redis/client-kind.ts).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { IOREDIS_VERSION } from '../src/redis/client-kind.js';
import { InvalidOptionsError, RedisConnector, Store } from '../src/index.js';
import { describe, expect, test } from './harness/store-fixture.js';

const require = createRequire(import.meta.url);

/** A second, separate copy of ioredis's classes, as another node_modules would load. */
function anotherIoredis(): typeof import('ioredis') {
  const root = dirname(require.resolve('ioredis/package.json'));
  const saved = new Map<string, NodeJS.Module>();
  for (const [path, module] of Object.entries(require.cache)) {
    if (path.startsWith(root) && module) {
      saved.set(path, module);
      delete require.cache[path];
    }
  }
  try {
    return require('ioredis') as typeof import('ioredis');
  } finally {
    for (const path of Object.keys(require.cache)) if (path.startsWith(root)) delete require.cache[path];
    for (const [path, module] of saved) require.cache[path] = module;
  }
}

describe('clients from another copy of ioredis', () => {
  test('a Redis or Cluster client of another ioredis copy works (instanceof would refuse it)', async ({ target, namespace }) => {
    const other = anotherIoredis();
    const { Redis } = await import('ioredis');
    const client =
      target.kind === 'single' ? new other.Redis(target.url) : new other.Cluster(target.nodes);
    expect(client instanceof Redis).toBe(false);
    const store = new Store('other-copy', new RedisConnector({ client: client as never, namespace }));
    expect(store.connector.isCluster).toBe(target.kind === 'cluster');
    const key = await store.put({ via: 'another copy' });
    expect(await store.get(key)).toEqual({ via: 'another copy' });
    await store.evict(key);
    await store.close();
    await client.quit();
  });

  test('a client speaking RESP3 (ioredis 6 by default) is refused, saying which versions differ and what to do', () => {
    const other = anotherIoredis();
    const client = new other.Redis({ lazyConnect: true, protocol: 3 } as never);
    const err = (() => {
      try {
        new RedisConnector({ client: client as never, namespace: 'x' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidOptionsError);
    expect((err as Error).message).toBe(
      `RedisConnector \`client\` comes from another ioredis than proxystore-redis's (ioredis ${IOREDIS_VERSION}) and speaks RESP3 ` +
        "(ioredis 6's default), whose replies this library does not decode: create it with { protocol: 2 }, or use ioredis ^5",
    );
    client.disconnect();
  });

  test('anything else is refused, naming what it got', () => {
    expect(() => new RedisConnector({ client: {} as never, namespace: 'x' })).toThrow(
      /^RedisConnector `client` must be an ioredis Redis or Cluster client \(ioredis 5\.\d+\.\d+ or another 5\.x copy\), got a plain object$/,
    );
    const nodeRedisLike = { sendCommand: () => undefined, connect: () => undefined, quit: () => undefined, on: () => undefined };
    expect(() => new RedisConnector({ client: nodeRedisLike as never, namespace: 'x' })).toThrow(/got a plain object without defineCommand, pipeline, off, once, disconnect/);
    expect(() => new RedisConnector({ client: 'redis://x' as never, namespace: 'x' })).toThrow(/got string/);
  });

  test('a client you pass keeps its own settings: connector-made options are refused', ({ target, namespace }) => {
    const other = anotherIoredis();
    const client = target.kind === 'single' ? new other.Redis(target.url, { lazyConnect: true }) : new other.Cluster(target.nodes, { lazyConnect: true });
    expect(() => new RedisConnector({ client: client as never, namespace, commandTimeoutMs: 5 })).toThrow(/`commandTimeoutMs` applies only to a client the connector creates/);
    client.disconnect();
  });
});
