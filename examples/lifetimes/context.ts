import assert from 'node:assert/strict';
import { ContextLifetime, RedisConnector, Store, getKey } from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}));

const lifetime = new ContextLifetime(store); // (1)

const key = await store.put('value', { lifetime }); // (2)
const proxy = await store.proxy('value', { lifetime }); // (3)

await lifetime.close(); // (4)
assert.equal(await store.exists(key), false);
assert.equal(await store.exists(getKey(proxy)), false);

await store.close(); // (5)
