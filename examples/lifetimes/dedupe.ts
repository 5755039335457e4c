import assert from 'node:assert/strict';
import { ContextLifetime, RedisConnector, Store } from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}), { register: true });

const weights = Buffer.alloc(1024 * 1024, 7); // the same bytes in every process
const a = await store.put(weights, { dedupe: true }); // (1)
const b = await store.put(weights, { dedupe: true }); // (2)
assert.equal(a, b);
assert.match(a, /^sha256\./);

const lifetime = new ContextLifetime(store);
await store.put(weights, { dedupe: true, lifetime }); // (3)

await store.evict(a); // (4)
await store.evict(a);
assert.equal(await store.exists(a), true); // the lifetime still holds it
await lifetime.close(); // (5)
assert.equal(await store.exists(a), false);

await store.close();
