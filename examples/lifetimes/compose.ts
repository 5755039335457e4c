import assert from 'node:assert/strict';
import { LeaseLifetime, ProxyResolveMissingKeyError, RedisConnector, Store, fromRef, getKey, resolve, toRef } from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}), { register: true });

const lease = new LeaseLifetime(store, { expiry: 60 }); // (1)
const input = await store.proxy({ rows: [1, 2, 3] }, { reads: 2, ttl: 30, lifetime: lease }); // (2)
const ref = toRef(input); // { ..., evict: true, reads: 2 }

// Two consumers (in any processes) get it; the second read deletes it.
assert.deepEqual(await resolve(fromRef(ref)), { rows: [1, 2, 3] }); // (3)
assert.deepEqual(await resolve(fromRef(ref)), { rows: [1, 2, 3] });
await assert.rejects(resolve(fromRef(ref)), (err: Error) => {
  assert.ok(err instanceof ProxyResolveMissingKeyError);
  assert.match(err.message, /read 2 of 2 times, last by pid \d+/); // (4)
  return true;
});

const unread = await store.proxy('nobody reads me', { evict: true, lifetime: lease }); // (5)
await lease.close(); // (6)
assert.equal(await store.exists(getKey(unread)), false);

await store.close();
