import assert from 'node:assert/strict';
import { ContextLifetime, RedisConnector, Store, getKey, type Proxy } from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}));

let key: string;
let proxy: Proxy<string>;
{
  await using lifetime = new ContextLifetime(store);
  key = await store.put('value', { lifetime });
  proxy = await store.proxy('value', { lifetime });
}

assert.equal(await store.exists(key), false);
assert.equal(await store.exists(getKey(proxy)), false);

await store.close();
