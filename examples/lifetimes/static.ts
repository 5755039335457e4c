import assert from 'node:assert/strict';
import { RedisConnector, StaticLifetime, Store, resolve } from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}), { register: true }); // (1)

const key = await store.put('value', { lifetime: StaticLifetime.instance() }); // (2)
const proxy = await store.proxy('value', { lifetime: StaticLifetime.instance() }); // (3)

// ... the rest of the program uses them ...
assert.equal(await store.get(key), 'value');
assert.equal(await resolve(proxy), 'value');

await store.close(); // (4)
