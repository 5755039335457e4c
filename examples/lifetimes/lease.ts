import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaseLifetime, RedisConnector, Store, getKey } from 'proxystore-redis';

await using store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}));

const lifetime = new LeaseLifetime(store, { expiry: 2 }); // (1)

const key = await store.put('value', { lifetime });
const proxy = await store.proxy('value', { lifetime });

await lifetime.extend(1); // (2)

await sleep(4_000); // (3)

assert.ok(await lifetime.done()); // (4)
assert.equal(await store.exists(key), false);
assert.equal(await store.exists(getKey(proxy)), false);
