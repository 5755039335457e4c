import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import {
  ProxyNotResolvedError,
  RedisConnector,
  Store,
  extract,
  fromRef,
  getKey,
  isResolved,
  resolve,
  toRef,
} from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}), { register: true });

const prices = await store.proxy(new Map([['apple', 1.25]]));
const p = fromRef<Map<string, number>>(toRef(prices)); // as another process would get it

// Before resolution: peeking is fine, touching is an error.
assert.equal(isResolved(p), false);
assert.ok(p instanceof Map); // the shape was recorded at put time
assert.equal(inspect(p), `Proxy<${getKey(p)}, unresolved>`);
assert.throws(() => p.get('apple'), ProxyNotResolvedError);

// After: the proxy forwards everything to its target.
await resolve(p);
assert.equal(p.get('apple'), 1.25);
assert.deepEqual([...p.keys()], ['apple']);
assert.equal(JSON.stringify(p), JSON.stringify(toRef(p))); // a proxy serializes as its ref
assert.equal(JSON.stringify(Object.fromEntries(extract(p))), '{"apple":1.25}'); // extract gives the target

await store.evict(getKey(prices));
await store.close();
