import assert from 'node:assert/strict';
import { FutureAlreadySetError, RedisConnector, Store, proxyReviver, resolve } from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}), { register: true });

// Step B (a worker, a queue consumer, another process): it gets a message
// with refs and resolves its input when it needs it.
async function stepB(message: string): Promise<number> {
  const { input } = JSON.parse(message, proxyReviver) as { input: number[] };
  const values = await resolve(input); // blocks in Redis until step A sets it
  return values.reduce((a, b) => a + b, 0);
}

// The producer hands step B the proxy of a result that does not exist yet...
const future = await store.future<number[]>({ evict: true, timeout: 30 });
const sum = stepB(JSON.stringify({ input: future.proxy() }));

// ...then runs step A and sets the result: step B wakes within one round trip.
await future.setResult([1, 2, 3, 4]);
assert.equal(await sum, 10);

// A future is set once, from whichever process.
await assert.rejects(future.setResult([5]), FutureAlreadySetError);

await store.close();
