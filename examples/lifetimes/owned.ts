import assert from 'node:assert/strict';
import { ContextLifetime, LifetimeEndedError, RedisConnector, Store, borrow, getKey, release, resolve } from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}), { register: true });

const lifetime = new ContextLifetime(store, { name: 'job' });
const table = await store.ownedProxy({ rows: [1, 2, 3] }, { lifetime }); // (1)
const scratch = await store.ownedProxy({ tmp: true }, { lifetime });
const reader = await borrow(table); // (2) sent to a worker with toRef(reader)

await lifetime.close(); // (3)
assert.equal(await store.exists(getKey(scratch)), false); // unborrowed: evicted
assert.deepEqual(await resolve(reader), { rows: [1, 2, 3] }); // (4) borrowed: kept for the borrow
await assert.rejects(borrow(table), LifetimeEndedError); // (5) the owner has ended

await release(reader); // (6) the last borrow ends: the object goes
assert.equal(await store.exists(getKey(table)), false);

await store.close();
