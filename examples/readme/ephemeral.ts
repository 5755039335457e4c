import assert from 'node:assert/strict';
import { ProxyResolveMissingKeyError, RedisConnector, Store, fromRef, resolve, toRef } from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}), { register: true });

const input = await store.proxy({ rows: [1, 2, 3] }, { evict: true });
const ref = toRef(input); // { ..., evict: true }

// Resolving the ref consumes the object: read and deleted in one script.
assert.deepEqual(await resolve(fromRef(ref)), { rows: [1, 2, 3] });

// A second resolve, here or in any process, says who consumed it.
await assert.rejects(resolve(fromRef(ref)), (err: Error) => {
  assert.ok(err instanceof ProxyResolveMissingKeyError);
  assert.match(err.message, /consumed by pid \d+ on \S+ \d+\.\d s ago at .*ephemeral\.ts:\d+/);
  return true;
});

await store.close();
