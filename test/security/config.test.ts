/**
 * store.config() never holds a password or TLS material, for a connector
 * made from a URL, from options or from your own client; Store.fromConfig
 * takes the password separately (an option, or PROXYSTORE_REDIS_PASSWORD).
 * Runs against its own redis-server with a password-protected user.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../../scripts/local-redis.js';
import { ENV_PASSWORD, RedisConnector, Store } from '../../src/index.js';
import { afterAll, beforeAll, describe, expect, test } from '../harness/fixtures.js';

const PASSWORD = 'pw-4b1d0c';
let server: LocalRedis;
let admin: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
  await admin.call('ACL', 'SETUSER', 'app', 'on', `>${PASSWORD}`, '~*', '+@all');
  await admin.call('ACL', 'SETUSER', 'default', 'off');
});

afterAll(async () => {
  admin.disconnect();
  await server.stop();
});

function withPassword(): string {
  return `redis://app:${PASSWORD}@127.0.0.1:${server.port}`;
}

describe('configs hold no secrets', () => {
  test('a URL connector: the config keeps the user, drops the password', async ({ namespace }) => {
    const store = new Store('cfg-url', new RedisConnector({ url: withPassword(), namespace }));
    await store.ready();
    const text = JSON.stringify(store.config());
    expect(text).not.toContain(PASSWORD);
    expect(store.config().connector.url).toBe(`redis://app@127.0.0.1:${server.port}`);
    await store.close();
  });

  test('your own client: the config records its address and user, not its password', async ({ namespace }) => {
    const client = new Redis({ host: '127.0.0.1', port: server.port, username: 'app', password: PASSWORD, db: 2 });
    const store = new Store('cfg-client', new RedisConnector({ client, namespace }));
    await store.ready();
    const config = store.config();
    expect(JSON.stringify(config)).not.toContain(PASSWORD);
    expect(config.connector.url).toBe(`redis://app@127.0.0.1:${server.port}/2`);
    await store.close();
    await client.quit();
  });

  test('TLS material and passwords in redisOptions stay out; plain options are kept', () => {
    const connector = new RedisConnector({
      url: 'rediss://10.255.0.1:6380',
      namespace: 'x',
      redisOptions: { password: 'secret', tls: { key: 'PRIVATE KEY', ca: 'MY CA', servername: 'redis.internal' }, connectionName: 'svc', connectTimeout: 2000 },
    });
    const config = connector.config();
    const text = JSON.stringify(config);
    for (const secret of ['secret', 'PRIVATE KEY', 'MY CA']) expect(text).not.toContain(secret);
    expect(config).toMatchObject({ url: 'rediss://10.255.0.1:6380', tls: true, redisOptions: { connectionName: 'svc', connectTimeout: 2000 } });
    void connector.close(); // never connected: nothing to close but the client object
  });
});

describe('fromConfig takes the password separately', () => {
  test('without a password the rebuilt store cannot log in; with { password } or PROXYSTORE_REDIS_PASSWORD it works', async ({ namespace }) => {
    const store = new Store('cfg-pw', new RedisConnector({ url: withPassword(), namespace }));
    const key = await store.put({ secret: false });
    const config = store.config();

    const anonymous = Store.fromConfig(config);
    await expect(anonymous.ready()).rejects.toThrow(/NOAUTH|WRONGPASS|Authentication|disabled/i);
    await anonymous.close();

    const explicit = Store.fromConfig(config, { password: PASSWORD });
    expect(await explicit.get(key)).toEqual({ secret: false });
    await explicit.close();

    process.env[ENV_PASSWORD] = PASSWORD;
    try {
      const fromEnv = Store.fromConfig(config);
      expect(await fromEnv.get(key)).toEqual({ secret: false });
      await fromEnv.close();
    } finally {
      delete process.env[ENV_PASSWORD];
    }
    await store.evict(key);
    await store.close();
  });
});
